// End-to-end: blob GET/HEAD (Content-Length, Docker-Content-Digest, Range/206/416), DELETE 202.
// Also repository scoping of blobs and sha512 blobs.

import { assert, assertEquals, assertError, digest, randomBytes, serverTest } from "../helpers.ts";

const DATA = randomBytes(10_000, 42);
const D = digest(DATA);

serverTest("GET and HEAD a blob", async ({ client }) => {
  assertEquals((await client.pushBlob("app", DATA)).status, 201);
  const get = await client.get(`/v2/app/blobs/${D}`);
  assertEquals(get.status, 200);
  assertEquals(get.body, DATA);
  assertEquals(get.headers.get("docker-content-digest"), D);
  assertEquals(get.headers.get("content-length"), String(DATA.length));
  assertEquals(get.headers.get("content-type"), "application/octet-stream");
  assertEquals(get.headers.get("accept-ranges"), "bytes");

  const head = await client.head(`/v2/app/blobs/${D}`);
  assertEquals(head.status, 200);
  assertEquals(head.body.length, 0);
  assertEquals(head.headers.get("content-length"), String(DATA.length));
  assertEquals(head.headers.get("docker-content-digest"), D);
});

serverTest("an empty blob", async ({ client }) => {
  const empty = new Uint8Array();
  assertEquals((await client.pushBlob("app", empty)).status, 201);
  const get = await client.get(`/v2/app/blobs/${digest(empty)}`);
  assertEquals([get.status, get.body.length], [200, 0]);
  assertEquals(
    (await client.head(`/v2/app/blobs/${digest(empty)}`)).headers.get("content-length"),
    "0",
  );
});

serverTest("Range requests: 206 with Content-Range, suffix, open end", async ({ client }) => {
  await client.pushBlob("app", DATA);
  const cases: [string, number, number][] = [
    ["bytes=0-0", 0, 1],
    ["bytes=0-99", 0, 100],
    ["bytes=9990-", 9990, 10_000],
    ["bytes=-10", 9990, 10_000],
    ["bytes=5000-20000", 5000, 10_000],
    ["bytes=-20000", 0, 10_000],
  ];
  for (const [range, start, end] of cases) {
    const res = await client.get(`/v2/app/blobs/${D}`, { range });
    assertEquals(res.status, 206, range);
    assertEquals(res.headers.get("content-range"), `bytes ${start}-${end - 1}/10000`, range);
    assertEquals(res.headers.get("content-length"), String(end - start), range);
    assertEquals(res.body, DATA.slice(start, end), range);
    assertEquals(res.headers.get("docker-content-digest"), D);
  }
  const head = await client.head(`/v2/app/blobs/${D}`, { range: "bytes=10-19" });
  assertEquals([head.status, head.headers.get("content-length")], [206, "10"]);
  // Syntactically invalid ranges are ignored: the whole blob.
  for (const range of ["bytes=5-2", "bytes=0-1,5-6", "lines=1-2", "bytes=x-"]) {
    const res = await client.get(`/v2/app/blobs/${D}`, { range });
    assertEquals([res.status, res.body.length], [200, DATA.length], range);
  }
});

serverTest("unsatisfiable Range is 416 with Content-Range: bytes */size", async ({ client }) => {
  await client.pushBlob("app", DATA);
  for (const range of ["bytes=10000-", "bytes=10000-10005", "bytes=20000-30000", "bytes=-0"]) {
    const res = await client.get(`/v2/app/blobs/${D}`, { range });
    assertError(res, 416, "RANGE_INVALID", range);
    assertEquals(res.headers.get("content-range"), "bytes */10000", range);
  }
  // The blob is untouched.
  assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);
});

serverTest("unknown blobs are 404 BLOB_UNKNOWN; HEAD has no body", async ({ client }) => {
  const missing = digest(new Uint8Array([1, 2, 3]));
  assertError(await client.get(`/v2/app/blobs/${missing}`), 404, "BLOB_UNKNOWN");
  const head = await client.head(`/v2/app/blobs/${missing}`);
  assertEquals([head.status, head.body.length], [404, 0]);
});

serverTest("a repository serves only blobs pushed or mounted into it", async ({ client }) => {
  await client.pushBlob("one", DATA);
  assertEquals((await client.head(`/v2/one/blobs/${D}`)).status, 200);
  assertError(await client.get(`/v2/two/blobs/${D}`), 404, "BLOB_UNKNOWN");
  assertEquals((await client.head(`/v2/two/blobs/${D}`)).status, 404);
  assertEquals((await client.head(`/v2/one/sub/blobs/${D}`)).status, 404);
});

serverTest(
  "DELETE a blob: 202, then 404 here while other repositories keep it",
  async ({ client }) => {
    await client.pushBlob("one", DATA);
    await client.pushBlob("two", DATA);
    const del = await client.request("DELETE", `/v2/one/blobs/${D}`);
    assertEquals(del.status, 202);
    assertEquals(del.headers.get("docker-content-digest"), D);
    assertError(await client.get(`/v2/one/blobs/${D}`), 404, "BLOB_UNKNOWN");
    assertEquals((await client.get(`/v2/two/blobs/${D}`)).body, DATA);
    assertError(await client.request("DELETE", `/v2/one/blobs/${D}`), 404, "BLOB_UNKNOWN");
    // Pushing again brings it back.
    assertEquals((await client.pushBlob("one", DATA)).status, 201);
    assertEquals((await client.get(`/v2/one/blobs/${D}`)).body, DATA);
  },
);

serverTest("sha512 blobs: monolithic and chunked pushes, GET verifies", async ({ client }) => {
  const data = randomBytes(5000, 512);
  const d512 = digest(data, "sha512");
  const res = await client.pushBlob("app", data, "sha512");
  assertEquals(res.status, 201, res.text);
  assertEquals(res.headers.get("docker-content-digest"), d512);
  const get = await client.get(`/v2/app/blobs/${d512}`);
  assertEquals([get.status, get.headers.get("docker-content-digest")], [200, d512]);
  assertEquals(digest(get.body, "sha512"), d512);

  const other = randomBytes(3000, 513);
  const chunked = await client.pushBlobChunked("app", other, 1000, "sha512");
  assertEquals(chunked.status, 201, chunked.text);
  assertEquals((await client.get(`/v2/app/blobs/${digest(other, "sha512")}`)).body, other);
  // A sha256 digest of the same bytes is a different (unknown) blob here.
  assert((await client.head(`/v2/app/blobs/${digest(other)}`)).status === 404);
});

serverTest("blob digests must be valid: 400 DIGEST_INVALID", async ({ client }) => {
  for (const bad of ["sha256:short", "sha256:" + "A".repeat(64), "md5:abc", "nodigest"]) {
    assertError(await client.get(`/v2/app/blobs/${bad}`), 400, "DIGEST_INVALID", bad);
    assertError(await client.request("DELETE", `/v2/app/blobs/${bad}`), 400, "DIGEST_INVALID");
  }
});
