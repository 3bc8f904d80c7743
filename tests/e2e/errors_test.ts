// End-to-end: every error code the registry emits, with its status and body, on one server each;
// `--no-delete` (deleteEnabled false) refusing every DELETE; a failing driver is a 503 UNAVAILABLE.

import { createMemoryDriver } from "../../src/storage/memory.ts";
import {
  assertEquals,
  assertError,
  bytes,
  descriptorOf,
  digest,
  imageManifest,
  OCI_CONFIG,
  OCI_MANIFEST,
  pushImage,
  randomBytes,
  serverTest,
  streamOf,
  withDigest,
  withServer,
} from "../helpers.ts";

const MISSING = digest(bytes("missing"));

serverTest("every error code with its status", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  const session = await client.startUpload("app");
  const emitted = new Set<string>();
  const check = async (
    label: string,
    res: Promise<import("../helpers.ts").Res>,
    status: number,
    code: string,
  ) => {
    assertError(await res, status, code, label);
    emitted.add(code);
  };

  await check("unknown blob", client.get(`/v2/app/blobs/${MISSING}`), 404, "BLOB_UNKNOWN");
  await check(
    "unknown upload",
    client.get("/v2/app/blobs/uploads/0f8fad5b-d9cb-469f-a165-70867728950e"),
    404,
    "BLOB_UPLOAD_UNKNOWN",
  );
  await check(
    "wrong digest",
    client.request("PUT", withDigest(session, MISSING)),
    400,
    "DIGEST_INVALID",
  );
  await check(
    "missing layer",
    client.pushManifest(
      "app",
      "t",
      imageManifest({ config: descriptorOf(OCI_CONFIG, bytes("nope")), layers: [] }),
    ),
    400,
    "MANIFEST_BLOB_UNKNOWN",
  );
  await check(
    "bad json",
    client.pushManifest("app", "t", bytes("{"), OCI_MANIFEST),
    400,
    "MANIFEST_INVALID",
  );
  await check("unknown manifest", client.get("/v2/app/manifests/nope"), 404, "MANIFEST_UNKNOWN");
  await check("bad name", client.get("/v2/App/tags/list"), 400, "NAME_INVALID");
  await check("unknown name", client.get("/v2/nobody/tags/list"), 404, "NAME_UNKNOWN");
  const short = client.startUpload("app").then((location) =>
    client.request("PATCH", location, {
      body: streamOf(bytes("abc")),
      headers: { "content-range": "0-9" },
    })
  );
  await check("short chunk", short, 400, "SIZE_INVALID");
  await check(
    "bad tag",
    client.request("PUT", `/v2/app/manifests/${"x".repeat(129)}`, {
      body: image.manifest,
      headers: { "content-type": OCI_MANIFEST },
    }),
    400,
    "TAG_INVALID",
  );
  await check("bad n", client.get("/v2/app/tags/list?n=-1"), 400, "PAGINATION_NUMBER_INVALID");
  await check(
    "bad range",
    client.get(`/v2/app/blobs/${digest(image.config)}`, { range: "bytes=100000-" }),
    416,
    "RANGE_INVALID",
  );
  await check("wrong method", client.request("POST", "/v2/app/manifests/v1"), 405, "UNSUPPORTED");
  const big = await client.pushManifest(
    "app",
    "big",
    new Uint8Array(4 * 1024 * 1024 + 10),
    OCI_MANIFEST,
  );
  assertEquals([big.status, big.json().errors[0].code], [413, "SIZE_INVALID"]);
  const route = await client.get("/v2/nope");
  assertEquals([route.status, route.json().errors[0].code], [404, "UNSUPPORTED"]);

  assertEquals(
    [...emitted].sort(),
    [
      "BLOB_UNKNOWN",
      "BLOB_UPLOAD_UNKNOWN",
      "DIGEST_INVALID",
      "MANIFEST_BLOB_UNKNOWN",
      "MANIFEST_INVALID",
      "MANIFEST_UNKNOWN",
      "NAME_INVALID",
      "NAME_UNKNOWN",
      "PAGINATION_NUMBER_INVALID",
      "RANGE_INVALID",
      "SIZE_INVALID",
      "TAG_INVALID",
      "UNSUPPORTED",
    ],
  );
});

serverTest("HEAD errors carry the status and no body", async ({ client }) => {
  for (
    const [path, status] of [
      [`/v2/app/blobs/${MISSING}`, 404],
      ["/v2/app/manifests/nope", 404],
      ["/v2/BAD/manifests/x", 400],
      ["/v2/app/blobs/sha256:zz", 400],
    ] as const
  ) {
    const res = await client.head(path);
    assertEquals([res.status, res.body.length], [status, 0], path);
  }
});

serverTest(
  "with deletes disabled every DELETE is 405 UNSUPPORTED and changes nothing",
  async (s) => {
    const { client } = s;
    const image = await pushImage(client, "app", "v1");
    const session = await client.startUpload("app");
    const layer = digest(image.layers[0]);
    for (
      const path of [
        "/v2/app/manifests/v1",
        `/v2/app/manifests/${image.digest}`,
        `/v2/app/blobs/${layer}`,
        `/v2/app/blobs/${MISSING}`,
        "/v2/nobody/manifests/v1",
      ]
    ) {
      assertError(await client.request("DELETE", path), 405, "UNSUPPORTED", path);
    }
    assertEquals((await client.get("/v2/app/manifests/v1")).body, image.manifest);
    assertEquals((await client.get(`/v2/app/blobs/${layer}`)).body, image.layers[0]);
    // Cancelling an upload is not a delete of content: still allowed.
    assertEquals((await client.request("DELETE", session)).status, 204);
  },
  { deleteEnabled: false },
);

Deno.test("a failing driver is a 503 UNAVAILABLE with Retry-After, not a crash", async () => {
  const inner = createMemoryDriver();
  let broken = false;
  const fail = () => Promise.reject(new Error("disk on fire"));
  const driver = {
    ...inner,
    stat: (key: string) => broken ? fail() : inner.stat(key),
    get: (key: string) => broken ? fail() : inner.get(key),
    list: (key: string) => broken ? fail() : inner.list(key),
  };
  await using s = await withServer("memory", { driver });
  const image = await pushImage(s.client, "app", "v1");
  broken = true;
  for (
    const path of [`/v2/app/blobs/${digest(image.config)}`, "/v2/app/tags/list", "/v2/_catalog"]
  ) {
    const res = await s.client.get(path);
    assertError(res, 503, "UNAVAILABLE", path);
    assertEquals(res.headers.get("retry-after"), "5", path);
  }
  const head = await s.client.head(`/v2/app/blobs/${digest(image.config)}`);
  assertEquals([head.status, head.body.length], [503, 0]);
  broken = false;
  assertEquals((await s.client.get("/v2/app/tags/list")).status, 200, "recovers");
  assertEquals((await s.client.pushBlob("app", randomBytes(10))).status, 201);
});
