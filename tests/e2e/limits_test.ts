// End-to-end: what one client can make the registry hold or do is bounded (issue 18): the byte
// budget of buffered bodies, manifest references and nesting, referrer pages, upload expiry.

import {
  assert,
  assertEquals,
  assertError,
  bytes,
  descriptorOf,
  digest,
  EMPTY_JSON,
  imageManifest,
  jsonBytes,
  OCI_EMPTY,
  OCI_LAYER,
  OCI_MANIFEST,
  pushImage,
  randomBytes,
  serverTest,
  withServer,
} from "../helpers.ts";

/** Opens a manifest PUT that declares `length` bytes, sends a few and holds the rest back. */
async function stalledPut(url: string, length: number): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const head = `PUT /v2/app/manifests/stalled HTTP/1.1\r\nHost: ${hostname}\r\n` +
    `Content-Type: ${OCI_MANIFEST}\r\nContent-Length: ${length}\r\n\r\n{"schemaVersion":`;
  await conn.write(bytes(head));
  return conn;
}

Deno.test("a manifest PUT beyond the body budget is 503 with Retry-After, and the budget returns", async () => {
  await using s = await withServer("memory", { bodyBudget: 1024 * 1024 });
  const held = await stalledPut(s.url, 900_000);
  const probe = () =>
    s.client.request("PUT", "/v2/app/manifests/probe", {
      body: new Uint8Array(900_000).fill(0x20),
      headers: { "content-type": OCI_MANIFEST },
    });
  // The stalled PUT takes its budget once its headers are read; poll until it has.
  let refused = await probe();
  for (let i = 0; i < 100 && refused.status !== 503; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    refused = await probe();
  }
  assertError(refused, 503, "UNAVAILABLE");
  assertEquals(refused.headers.get("retry-after"), "1");
  held.close();
  let after = await probe();
  for (let i = 0; i < 100 && after.status === 503; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    after = await probe();
  }
  assertError(after, 400, "MANIFEST_INVALID"); // blank bytes: read, parsed, refused
});

serverTest("a manifest with too many references or too deep a nesting is 400", async (s) => {
  const config = descriptorOf(OCI_EMPTY, EMPTY_JSON);
  const layer = descriptorOf(OCI_LAYER, randomBytes(10));
  const many = imageManifest({ config, layers: Array(4096).fill(layer) });
  const tooMany = await s.client.pushManifest("app", "many", many);
  assertError(tooMany, 400, "MANIFEST_INVALID");
  assert(tooMany.text.includes("references"), tooMany.text);

  const deep = {
    ...imageManifest({ config, layers: [] }),
    x: JSON.parse("[".repeat(40) + "]".repeat(40)),
  };
  const nested = await s.client.pushManifest("app", "deep", deep);
  assertError(nested, 400, "MANIFEST_INVALID");
  assert(nested.text.includes("nested"), nested.text);
});

serverTest("referrers with megabytes of annotations come in pages bounded in bytes", async (s) => {
  const subject = await pushImage(s.client, "app", "v1");
  const big = "x".repeat(1_500_000);
  const pushed: string[] = [];
  for (let i = 0; i < 6; i++) {
    assertEquals((await s.client.pushBlob("app", EMPTY_JSON)).status, 201);
    const manifest = jsonBytes(imageManifest({
      config: descriptorOf(OCI_EMPTY, EMPTY_JSON),
      layers: [],
      artifactType: "application/vnd.example.sig",
      subject: subject.descriptor,
      annotations: { n: String(i), big },
    }));
    assertEquals((await s.client.pushManifest("app", digest(manifest), manifest)).status, 201);
    pushed.push(digest(manifest));
  }
  const seen: string[] = [];
  let next: string | undefined = `/v2/app/referrers/${subject.digest}`;
  let pages = 0;
  while (next) {
    const page = await s.client.get(next);
    assertEquals(page.status, 200);
    assert(page.body.length < 8 * 1024 * 1024, `a page holds ${page.body.length} bytes`);
    seen.push(...page.json().manifests.map((d: { digest: string }) => d.digest));
    next = /<([^>]+)>; rel="next"/.exec(page.headers.get("link") ?? "")?.[1];
    pages++;
  }
  assert(pages > 1, `${pages} page(s)`);
  assertEquals(seen.sort(), pushed.sort());
});

Deno.test("abandoned upload sessions expire without GC, and their hashes go with them", async () => {
  await using s = await withServer("memory", { uploadTtl: 1000 });
  const location = await s.client.startUpload("app");
  const patch = await s.client.request("PATCH", location, { body: randomBytes(10) });
  assertEquals(patch.status, 202);
  assertEquals((await s.driver.list("_uploads")).length, 1);
  assertEquals(s.server.store.state.uploadHashes.size, 1);
  for (let i = 0; i < 100 && (await s.driver.list("_uploads")).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assertEquals(await s.driver.list("_uploads"), []);
  assertEquals(s.server.store.state.uploadHashes.size, 0);
  const status = await s.client.get(new URL(patch.headers.get("location")!, s.url).toString());
  assertError(status, 404, "BLOB_UPLOAD_UNKNOWN");
});

serverTest("tags/list of a mere prefix of repository names is 404 NAME_UNKNOWN", async (s) => {
  await pushImage(s.client, "crane/app", "v1");
  assertError(await s.client.get("/v2/crane/tags/list"), 404, "NAME_UNKNOWN");
  assertEquals((await s.client.get("/v2/crane/app/tags/list")).json().tags, ["v1"]);
});

serverTest("/v2/tags/list comes in pages with Link, like the catalog", async (s) => {
  for (const name of ["a", "b", "c"]) await pushImage(s.client, name, "v1", { layerCount: 1 });
  const first = await s.client.get("/v2/tags/list?n=2");
  assertEquals(first.json().repositories.map((r: { name: string }) => r.name), ["a", "b"]);
  const link = /<([^>]+)>; rel="next"/.exec(first.headers.get("link") ?? "")?.[1];
  assert(link, "a Link to the next page");
  const second = await s.client.get(link);
  assertEquals(second.json().repositories, [{ name: "c", tags: ["v1"] }]);
  assertEquals(second.headers.get("link"), null);
});
