// End-to-end: manifests — PUT by tag/digest (exact bytes, Location, digests, OCI-Subject),
// validation errors, GET/HEAD headers, 304, Accept merging, DELETE of tags and digests, media types.

import {
  assert,
  assertEquals,
  assertError,
  bytes,
  descriptorOf,
  digest,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  EMPTY_JSON,
  imageIndex,
  imageManifest,
  jsonBytes,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  pushImage,
  randomBytes,
  type RegistryClient,
  serverTest,
} from "../helpers.ts";

/** A manifest with odd but valid formatting: the registry must return these exact bytes. */
async function oddlyFormatted(client: RegistryClient, name: string) {
  const config = bytes('{"os":"linux"}');
  const layer = randomBytes(100, 3);
  await client.pushBlob(name, config);
  await client.pushBlob(name, layer);
  const body = bytes(
    `{\n  "schemaVersion" : 2,\t"mediaType": "${OCI_MANIFEST}",\n` +
      `"config": ${JSON.stringify(descriptorOf(OCI_CONFIG, config))},\n` +
      `"layers": [ ${
        JSON.stringify(descriptorOf(OCI_LAYER, layer))
      } ] ,"annotations":{"k":"\\u00e9"} }\n\n`,
  );
  return { body, digest: digest(body) };
}

serverTest(
  "PUT by tag: 201, Location, Docker-Content-Digest; GET returns the exact bytes",
  async (s) => {
    const { client } = s;
    const { body, digest: d } = await oddlyFormatted(client, "app");
    const put = await client.pushManifest("app", "v1", body, OCI_MANIFEST);
    assertEquals(put.status, 201, put.text);
    assertEquals(put.headers.get("location"), `${s.url}/v2/app/manifests/${d}`);
    assertEquals(put.headers.get("docker-content-digest"), d);
    assertEquals(put.headers.get("oci-subject"), null);

    for (const reference of ["v1", d]) {
      const get = await client.get(`/v2/app/manifests/${reference}`, { accept: OCI_MANIFEST });
      assertEquals(get.status, 200);
      assertEquals(get.body, body, "exact bytes");
      assertEquals(get.headers.get("content-type"), OCI_MANIFEST);
      assertEquals(get.headers.get("content-length"), String(body.length));
      assertEquals(get.headers.get("docker-content-digest"), d);
      assertEquals(get.headers.get("etag"), `"${d}"`);

      const head = await client.head(`/v2/app/manifests/${reference}`);
      assertEquals([head.status, head.body.length], [200, 0]);
      assertEquals(head.headers.get("content-length"), String(body.length));
      assertEquals(head.headers.get("docker-content-digest"), d);
      assertEquals(head.headers.get("content-type"), OCI_MANIFEST);
    }
  },
);

serverTest("PUT by digest: 201, no tag created", async ({ client }) => {
  const image = await pushImage(client, "app", undefined);
  assertEquals((await client.get(`/v2/app/manifests/${image.digest}`)).body, image.manifest);
  assertEquals((await client.get("/v2/app/tags/list")).json(), { name: "app", tags: [] });
});

serverTest("a digest reference that does not match the body: 400, nothing stored", async (s) => {
  const { client } = s;
  const image = await pushImage(client, "app", "v1");
  const other = jsonBytes({
    ...JSON.parse(new TextDecoder().decode(image.manifest)),
    annotations: { a: "b" },
  });
  const res = await client.pushManifest("app", image.digest, other, OCI_MANIFEST);
  assertError(res, 400, "DIGEST_INVALID");
  assertEquals((await client.get(`/v2/app/manifests/${image.digest}`)).body, image.manifest);
  assertEquals((await client.head(`/v2/app/manifests/${digest(other)}`)).status, 404);
});

serverTest("a tag moves to a newer manifest", async ({ client }) => {
  const first = await pushImage(client, "app", "latest", { seed: 1 });
  const second = await pushImage(client, "app", "latest", { seed: 2 });
  const get = await client.get("/v2/app/manifests/latest");
  assertEquals(get.headers.get("docker-content-digest"), second.digest);
  assertEquals(get.body, second.manifest);
  // The old revision is still there by digest.
  assertEquals((await client.get(`/v2/app/manifests/${first.digest}`)).body, first.manifest);
});

serverTest(
  "missing references are 400 MANIFEST_BLOB_UNKNOWN; subject may be missing",
  async (s) => {
    const { client } = s;
    const config = bytes("{}");
    const layer = randomBytes(50, 1);
    await client.pushBlob("app", config);
    await client.pushBlob("app", layer);
    await client.pushBlob("elsewhere", randomBytes(60, 2));
    const missing = descriptorOf(OCI_LAYER, randomBytes(10, 9));
    const cases: [string, Record<string, unknown>, string][] = [
      [
        "missing layer",
        imageManifest({ config: descriptorOf(OCI_CONFIG, config), layers: [missing] }),
        OCI_MANIFEST,
      ],
      [
        "missing config",
        imageManifest({ config: { ...missing, mediaType: OCI_CONFIG }, layers: [] }),
        OCI_MANIFEST,
      ],
      [
        "layer only in another repository",
        imageManifest({
          config: descriptorOf(OCI_CONFIG, config),
          layers: [descriptorOf(OCI_LAYER, randomBytes(60, 2))],
        }),
        OCI_MANIFEST,
      ],
      ["missing index child", imageIndex([descriptorOf(OCI_MANIFEST, bytes("{}"))]), OCI_INDEX],
      [
        "a blob is not a manifest",
        imageIndex([descriptorOf(OCI_MANIFEST, layer)]),
        OCI_INDEX,
      ],
    ];
    for (const [label, manifest, mediaType] of cases) {
      const res = await client.pushManifest("app", "t", manifest, mediaType);
      assertError(res, 400, "MANIFEST_BLOB_UNKNOWN", label);
    }
    assertError(await client.get("/v2/app/manifests/t"), 404, "MANIFEST_UNKNOWN");

    // A subject that does not exist (yet) is allowed, and echoed in OCI-Subject.
    const subject = descriptorOf(OCI_MANIFEST, bytes('{"not":"pushed"}'));
    const withSubject = imageManifest({
      config: descriptorOf(OCI_CONFIG, config),
      layers: [descriptorOf(OCI_LAYER, layer)],
      subject,
    });
    const res = await client.pushManifest("app", "sig", withSubject);
    assertEquals(res.status, 201, res.text);
    assertEquals(res.headers.get("oci-subject"), subject.digest);
  },
);

serverTest("malformed manifests are 400 MANIFEST_INVALID and store nothing", async (s) => {
  const { client } = s;
  for (
    const body of [
      "{not json",
      "",
      "[]",
      '{"schemaVersion":1}',
      '{"schemaVersion":2,"mediaType":"x/y"}',
    ]
  ) {
    assertError(
      await client.pushManifest("app", "v1", bytes(body), OCI_MANIFEST),
      400,
      "MANIFEST_INVALID",
      body,
    );
  }
  assertEquals(await s.driver.list("blobs"), []);
  assertEquals((await client.get("/v2/_catalog")).json(), { repositories: [] });
});

serverTest("manifests over 4 MiB are 413; exactly at the limit is judged on content", async (s) => {
  const { client } = s;
  const big = new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20);
  const res = await client.pushManifest("app", "big", big, OCI_MANIFEST);
  assertEquals(res.status, 413, res.text);
  assertEquals(res.json().errors[0].code, "SIZE_INVALID");
  // Streamed without Content-Length, too.
  const streamed = await client.request("PUT", "/v2/app/manifests/big", {
    body: ReadableStream.from([big.subarray(0, 3_000_000), big.subarray(3_000_000)]),
    headers: { "content-type": OCI_MANIFEST },
  });
  assertEquals(streamed.status, 413);
  // 4 MiB of whitespace around a valid manifest passes the size check (and fails on references).
  const padded = new Uint8Array(4 * 1024 * 1024).fill(0x20);
  padded.set(
    jsonBytes(imageManifest({ config: descriptorOf(OCI_CONFIG, bytes("x")), layers: [] })),
  );
  assertError(
    await client.pushManifest("app", "big", padded, OCI_MANIFEST),
    400,
    "MANIFEST_BLOB_UNKNOWN",
  );
  assertEquals(await s.driver.list("blobs"), []);
});

serverTest("If-None-Match with the ETag is 304", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  for (
    const value of [`"${image.digest}"`, `W/"${image.digest}"`, `"other", "${image.digest}"`, "*"]
  ) {
    const res = await client.get("/v2/app/manifests/v1", { "if-none-match": value });
    assertEquals(res.status, 304, value);
    assertEquals(res.body.length, 0);
    assertEquals(res.headers.get("etag"), `"${image.digest}"`);
  }
  const stale = await client.get("/v2/app/manifests/v1", { "if-none-match": '"sha256:old"' });
  assertEquals(stale.status, 200);
});

serverTest("several Accept lines are merged and never cause a 404", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  const docker = await pushImage(client, "app", "docker", { mediaType: DOCKER_MANIFEST, seed: 5 });
  const acceptSets = [
    [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX],
    [DOCKER_MANIFEST], // excludes OCI: still served as stored
    [OCI_INDEX],
    ["application/vnd.docker.distribution.manifest.v1+prettyjws", "application/json"],
    [`${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.5, */*`],
    [],
  ];
  for (const accepts of acceptSets) {
    const headers = new Headers();
    for (const a of accepts) headers.append("accept", a);
    for (const [ref, expected] of [["v1", image], ["docker", docker]] as const) {
      const get = await client.get(`/v2/app/manifests/${ref}`, headers);
      assertEquals(get.status, 200, `${ref} with ${accepts.join(" | ")}`);
      assertEquals(get.body, expected.manifest);
      const head = await client.head(`/v2/app/manifests/${ref}`, headers);
      assertEquals(head.status, 200);
    }
  }
  assertEquals(
    (await client.get("/v2/app/manifests/docker")).headers.get("content-type"),
    DOCKER_MANIFEST,
  );
});

serverTest("DELETE by tag removes only the tag", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  await client.pushManifest("app", "v2", image.manifest, OCI_MANIFEST);
  assertEquals((await client.request("DELETE", "/v2/app/manifests/v1")).status, 202);
  assertError(await client.get("/v2/app/manifests/v1"), 404, "MANIFEST_UNKNOWN");
  assertEquals((await client.get(`/v2/app/manifests/${image.digest}`)).body, image.manifest);
  assertEquals((await client.get("/v2/app/manifests/v2")).status, 200);
  assertEquals((await client.get("/v2/app/tags/list")).json().tags, ["v2"]);
  assertError(await client.request("DELETE", "/v2/app/manifests/v1"), 404, "MANIFEST_UNKNOWN");
});

serverTest("DELETE by digest removes the manifest and every tag naming it", async ({ client }) => {
  const image = await pushImage(client, "app", "v1", { seed: 1 });
  await client.pushManifest("app", "v1-alias", image.manifest, OCI_MANIFEST);
  const other = await pushImage(client, "app", "other", { seed: 2 });
  const del = await client.request("DELETE", `/v2/app/manifests/${image.digest}`);
  assertEquals(del.status, 202);
  for (const ref of ["v1", "v1-alias", image.digest]) {
    assertError(await client.get(`/v2/app/manifests/${ref}`), 404, "MANIFEST_UNKNOWN", ref);
    assertEquals((await client.head(`/v2/app/manifests/${ref}`)).status, 404);
  }
  assertEquals((await client.get("/v2/app/tags/list")).json().tags, ["other"]);
  assertEquals((await client.get("/v2/app/manifests/other")).body, other.manifest);
  assertError(
    await client.request("DELETE", `/v2/app/manifests/${image.digest}`),
    404,
    "MANIFEST_UNKNOWN",
  );
  // Layers stay until deleted themselves.
  assertEquals((await client.head(`/v2/app/blobs/${digest(image.layers[0])}`)).status, 200);
  // The manifest can be pushed again.
  assertEquals((await client.pushManifest("app", "v1", image.manifest, OCI_MANIFEST)).status, 201);
});

serverTest("a manifest is scoped to its repository", async ({ client }) => {
  const image = await pushImage(client, "one", "v1");
  assertError(await client.get(`/v2/two/manifests/${image.digest}`), 404, "MANIFEST_UNKNOWN");
  assertError(await client.get("/v2/two/manifests/v1"), 404, "MANIFEST_UNKNOWN");
  // Nor is a manifest a blob, nor a blob a manifest.
  assertEquals((await client.head(`/v2/one/blobs/${image.digest}`)).status, 404);
  assertEquals((await client.head(`/v2/one/manifests/${digest(image.config)}`)).status, 404);
});

serverTest("Docker schema2 manifest and manifest list", async ({ client }) => {
  const amd = await pushImage(client, "app", undefined, { mediaType: DOCKER_MANIFEST, seed: 1 });
  const arm = await pushImage(client, "app", undefined, { mediaType: DOCKER_MANIFEST, seed: 2 });
  const list = imageIndex([
    { ...amd.descriptor, platform: { architecture: "amd64", os: "linux" } },
    { ...arm.descriptor, platform: { architecture: "arm64", os: "linux" } },
  ], { mediaType: DOCKER_LIST });
  const res = await client.pushManifest("app", "multi", list, DOCKER_LIST);
  assertEquals(res.status, 201, res.text);
  const get = await client.get("/v2/app/manifests/multi");
  assertEquals(get.headers.get("content-type"), DOCKER_LIST);
  assertEquals(get.body, jsonBytes(list));
  assertEquals(get.headers.get("docker-content-digest"), digest(jsonBytes(list)));
  assertEquals(
    (await client.get(`/v2/app/manifests/${amd.digest}`)).headers.get("content-type"),
    DOCKER_MANIFEST,
  );
});

serverTest("OCI index of images", async ({ client }) => {
  const a = await pushImage(client, "app", undefined, { seed: 1 });
  const b = await pushImage(client, "app", undefined, { seed: 2 });
  const index = imageIndex([a.descriptor, b.descriptor]);
  const res = await client.pushManifest("app", "idx", index, OCI_INDEX);
  assertEquals(res.status, 201, res.text);
  const get = await client.get("/v2/app/manifests/idx");
  assertEquals([get.headers.get("content-type"), get.body], [OCI_INDEX, jsonBytes(index)]);
});

serverTest("sha512 manifest by digest reference, with sha512 blobs", async (s) => {
  const { client } = s;
  const config = bytes('{"architecture":"amd64"}');
  const layer = randomBytes(300, 12);
  await client.pushBlob("app", config, "sha512");
  await client.pushBlob("app", layer, "sha512");
  const manifest = jsonBytes(imageManifest({
    config: descriptorOf(OCI_CONFIG, config, {}, "sha512"),
    layers: [descriptorOf(OCI_LAYER, layer, {}, "sha512")],
  }));
  const d512 = digest(manifest, "sha512");
  const put = await client.pushManifest("app", d512, manifest, OCI_MANIFEST);
  assertEquals(put.status, 201, put.text);
  assertEquals(put.headers.get("docker-content-digest"), d512);
  assertEquals(put.headers.get("location"), `${s.url}/v2/app/manifests/${d512}`);
  const get = await client.get(`/v2/app/manifests/${d512}`);
  assertEquals([get.status, get.headers.get("docker-content-digest")], [200, d512]);
  assertEquals(get.body, manifest);
  // A wrong sha512 reference is refused.
  const wrong = digest(bytes("x"), "sha512");
  assertError(
    await client.pushManifest("app", wrong, manifest, OCI_MANIFEST),
    400,
    "DIGEST_INVALID",
  );
});

serverTest("artifact with artifactType and the empty config", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  const payload = bytes('{"sbom":true}');
  await client.pushBlob("app", EMPTY_JSON);
  await client.pushBlob("app", payload);
  const artifact = imageManifest({
    artifactType: "application/vnd.example.sbom.v1",
    config: descriptorOf(OCI_EMPTY, EMPTY_JSON),
    layers: [descriptorOf("application/vnd.example.sbom.layer.v1+json", payload)],
    subject: image.descriptor,
    annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
  });
  const res = await client.pushManifest("app", digest(jsonBytes(artifact)), artifact);
  assertEquals(res.status, 201, res.text);
  assertEquals(res.headers.get("oci-subject"), image.digest);
  const get = await client.get(`/v2/app/manifests/${digest(jsonBytes(artifact))}`);
  assertEquals(get.body, jsonBytes(artifact));
  assert(get.headers.get("content-type") === OCI_MANIFEST);
});
