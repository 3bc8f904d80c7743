// End-to-end: tags list (sorted, n/last, Link), catalog, GET /v2/tags/list, referrers API.
// Pagination is followed through its Link headers until the end.

import {
  assert,
  assertEquals,
  assertError,
  bytes,
  descriptorOf,
  digest,
  EMPTY_JSON,
  imageIndex,
  imageManifest,
  jsonBytes,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
  type PushedImage,
  pushImage,
  type RegistryClient,
  serverTest,
} from "../helpers.ts";

const TAGS = ["v2", "latest", "V1", "_x", "1.0", "a-b", "a.b", "z", "a_b"];
const SORTED = [...TAGS].sort(); // ASCII order

async function tagAll(client: RegistryClient, name: string, tags: string[]): Promise<PushedImage> {
  const image = await pushImage(client, name, undefined);
  for (const tag of tags) {
    assertEquals((await client.pushManifest(name, tag, image.manifest, OCI_MANIFEST)).status, 201);
  }
  return image;
}

/** Follows Link rel="next" from `path`, collecting `pick(body)`; bounded. */
async function followPages(client: RegistryClient, path: string, pick: (body: never) => string[]) {
  const pages: string[][] = [];
  let next: string | undefined = path;
  for (let i = 0; next && i < 50; i++) {
    const res = await client.get(next);
    assertEquals(res.status, 200, res.text);
    pages.push(pick(res.json() as never));
    const link = res.headers.get("link");
    next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
  }
  return pages;
}

serverTest("tags list is sorted", async ({ client }) => {
  await tagAll(client, "app", TAGS);
  const res = await client.get("/v2/app/tags/list");
  assertEquals(res.status, 200);
  assertEquals(res.json(), { name: "app", tags: SORTED });
  assertEquals(res.headers.get("link"), null);
});

serverTest("tags list pagination: n, last, Link rel=next", async (s) => {
  const { client } = s;
  await tagAll(client, "org/app", TAGS);
  const first = await client.get("/v2/org/app/tags/list?n=2");
  assertEquals(first.json().tags, SORTED.slice(0, 2));
  assertEquals(
    first.headers.get("link"),
    `<${s.url}/v2/org/app/tags/list?n=2&last=${encodeURIComponent(SORTED[1])}>; rel="next"`,
  );
  const pages = await followPages(
    client,
    "/v2/org/app/tags/list?n=2",
    (b: { tags: string[] }) => b.tags,
  );
  assertEquals(pages.flat(), SORTED);
  assertEquals(pages.length, Math.ceil(SORTED.length / 2));
  assert(pages.every((p) => p.length <= 2));

  assertEquals(
    (await client.get(`/v2/org/app/tags/list?last=${SORTED[3]}`)).json().tags,
    SORTED.slice(4),
  );
  assertEquals(
    (await client.get(`/v2/org/app/tags/list?n=3&last=${SORTED[3]}`)).json().tags,
    SORTED.slice(4, 7),
  );
  assertEquals((await client.get("/v2/org/app/tags/list?last=zzz")).json().tags, []);
  assertEquals(
    (await client.get("/v2/org/app/tags/list?last=0")).json().tags,
    SORTED,
    "before all",
  );
  const all = await client.get(`/v2/org/app/tags/list?n=${SORTED.length}`);
  assertEquals([all.json().tags, all.headers.get("link")], [SORTED, null]);
  const more = await client.get("/v2/org/app/tags/list?n=1000");
  assertEquals([more.json().tags, more.headers.get("link")], [SORTED, null]);
});

serverTest("tags list n=0 is empty without Link; bad n is 400", async ({ client }) => {
  await tagAll(client, "app", ["a", "b"]);
  const zero = await client.get("/v2/app/tags/list?n=0");
  assertEquals(zero.status, 200);
  assertEquals(zero.json(), { name: "app", tags: [] });
  assertEquals(zero.headers.get("link"), null);
  for (const n of ["-1", "abc", "1.5", "1e3", "99999999999", "0x10", " 1"]) {
    const res = await client.get(`/v2/app/tags/list?n=${encodeURIComponent(n)}`);
    assertError(res, 400, "PAGINATION_NUMBER_INVALID", n);
  }
});

serverTest("tags list of an unknown repository is 404 NAME_UNKNOWN", async ({ client }) => {
  assertError(await client.get("/v2/nothing/tags/list"), 404, "NAME_UNKNOWN");
  await pushImage(client, "app", "v1");
  assertError(await client.get("/v2/ap/tags/list"), 404, "NAME_UNKNOWN");
  assertError(await client.get("/v2/app/v1/tags/list"), 404, "NAME_UNKNOWN");
});

serverTest("catalog lists repositories with manifests, sorted and paginated", async (s) => {
  const { client } = s;
  const names = ["zeta", "alpha", "alpha/nested", "alpha/nested/deeper", "m-1", "m.2", "m_3"];
  for (const [i, name] of names.entries()) {
    await pushImage(client, name, "v1", { layerCount: 1, seed: i });
  }
  await client.pushBlob("blobs-only", bytes("x")); // no manifest: not a catalog entry
  const sorted = [...names].sort();
  const res = await client.get("/v2/_catalog");
  assertEquals(res.json(), { repositories: sorted });
  assertEquals(res.headers.get("link"), null);

  const page = await client.get("/v2/_catalog?n=3");
  assertEquals(page.json().repositories, sorted.slice(0, 3));
  assertEquals(
    page.headers.get("link"),
    `<${s.url}/v2/_catalog?n=3&last=${encodeURIComponent(sorted[2])}>; rel="next"`,
  );
  const pages = await followPages(
    client,
    "/v2/_catalog?n=3",
    (b: { repositories: string[] }) => b.repositories,
  );
  assertEquals(pages.flat(), sorted);
  assertEquals(
    (await client.get(`/v2/_catalog?last=${sorted[4]}`)).json().repositories,
    sorted.slice(5),
  );

  const zero = await client.get("/v2/_catalog?n=0");
  assertEquals([zero.json(), zero.headers.get("link")], [{ repositories: [] }, null]);
  for (const n of ["-1", "x", "100000"]) {
    assertError(await client.get(`/v2/_catalog?n=${n}`), 400, "PAGINATION_NUMBER_INVALID", n);
  }
});

serverTest("an empty registry has an empty catalog and tags index", async ({ client }) => {
  assertEquals((await client.get("/v2/_catalog")).json(), { repositories: [] });
  assertEquals((await client.get("/v2/tags/list")).json(), { repositories: [] });
});

serverTest("GET /v2/tags/list lists every repository with its tags", async ({ client }) => {
  await tagAll(client, "b/app", ["v2", "v1"]);
  await tagAll(client, "a", ["latest"]);
  await pushImage(client, "untagged", undefined);
  const res = await client.get("/v2/tags/list");
  assertEquals(res.status, 200);
  assertEquals(res.json(), {
    repositories: [
      { name: "a", tags: ["latest"] },
      { name: "b/app", tags: ["v1", "v2"] },
      { name: "untagged", tags: [] },
    ],
  });
});

async function pushReferrer(
  client: RegistryClient,
  name: string,
  subject: PushedImage,
  artifactType: string,
  seed: number,
) {
  await client.pushBlob(name, EMPTY_JSON);
  const payload = bytes(`{"seed":${seed}}`);
  await client.pushBlob(name, payload);
  const manifest = imageManifest({
    artifactType,
    config: descriptorOf(OCI_EMPTY, EMPTY_JSON),
    layers: [descriptorOf("application/json", payload)],
    subject: subject.descriptor,
    annotations: { seed: String(seed) },
  });
  const res = await client.pushManifest(name, digest(jsonBytes(manifest)), manifest);
  assertEquals(res.status, 201, res.text);
  assertEquals(res.headers.get("oci-subject"), subject.digest);
  return { manifest: jsonBytes(manifest), digest: digest(jsonBytes(manifest)) };
}

serverTest(
  "referrers: an image index of the manifests whose subject is the digest",
  async ({ client }) => {
    const image = await pushImage(client, "app", "v1");
    const sbom = await pushReferrer(client, "app", image, "application/vnd.example.sbom", 1);
    const sig = await pushReferrer(client, "app", image, "application/vnd.example.sig", 2);
    // An index can refer too; its artifactType is omitted when it has none.
    const index = imageIndex([], { subject: image.descriptor });
    assertEquals((await client.pushManifest("app", "idx", index, OCI_INDEX)).status, 201);

    const res = await client.get(`/v2/app/referrers/${image.digest}`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), OCI_INDEX);
    assertEquals(res.headers.get("oci-filters-applied"), null);
    const body = res.json();
    assertEquals([body.schemaVersion, body.mediaType], [2, OCI_INDEX]);
    const byDigest = Object.fromEntries(
      body.manifests.map((m: { digest: string }) => [m.digest, m]),
    );
    assertEquals(
      Object.keys(byDigest).sort(),
      [sbom.digest, sig.digest, digest(jsonBytes(index))].sort(),
    );
    assertEquals(byDigest[sbom.digest], {
      mediaType: OCI_MANIFEST,
      digest: sbom.digest,
      size: sbom.manifest.length,
      artifactType: "application/vnd.example.sbom",
      annotations: { seed: "1" },
    });
    assertEquals(byDigest[digest(jsonBytes(index))].artifactType, undefined);
    assertEquals(byDigest[digest(jsonBytes(index))].mediaType, OCI_INDEX);

    const filtered = await client.get(
      `/v2/app/referrers/${image.digest}?artifactType=application/vnd.example.sig`,
    );
    assertEquals(filtered.status, 200);
    assertEquals(filtered.headers.get("oci-filters-applied"), "artifactType");
    assertEquals(filtered.json().manifests.map((m: { digest: string }) => m.digest), [sig.digest]);
    const none = await client.get(`/v2/app/referrers/${image.digest}?artifactType=x/none`);
    assertEquals(none.json().manifests, []);

    // Referrers belong to the repository.
    assertEquals((await client.get(`/v2/other/referrers/${image.digest}`)).json().manifests, []);
    // Deleting a referrer removes it from the list.
    assertEquals((await client.request("DELETE", `/v2/app/manifests/${sig.digest}`)).status, 202);
    const after = await client.get(`/v2/app/referrers/${image.digest}`);
    assertEquals(after.json().manifests.length, 2);
  },
);

serverTest(
  "referrers: unknown subject is an empty index; invalid digest is 400",
  async ({ client }) => {
    const unknown = digest(bytes("nothing"));
    const res = await client.get(`/v2/nobody/referrers/${unknown}`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), OCI_INDEX);
    assertEquals(res.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    for (const bad of ["sha256:abc", "latest", "sha256:" + "G".repeat(64)]) {
      assertError(await client.get(`/v2/app/referrers/${bad}`), 400, "DIGEST_INVALID", bad);
    }
  },
);

serverTest("referrers: pagination with Link, n=0 empty", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  const digests: string[] = [];
  for (let i = 0; i < 5; i++) {
    digests.push((await pushReferrer(client, "app", image, "application/vnd.example", i)).digest);
  }
  const pages = await followPages(
    client,
    `/v2/app/referrers/${image.digest}?n=2`,
    (b: { manifests: { digest: string }[] }) => b.manifests.map((m) => m.digest),
  );
  assertEquals(pages.length, 3);
  assertEquals(pages.flat().sort(), digests.sort());
  const zero = await client.get(`/v2/app/referrers/${image.digest}?n=0`);
  assertEquals(zero.status, 200, zero.text);
  assertEquals([zero.json().manifests, zero.headers.get("link")], [[], null]);
  assertError(
    await client.get(`/v2/app/referrers/${image.digest}?n=x`),
    400,
    "PAGINATION_NUMBER_INVALID",
  );
});
