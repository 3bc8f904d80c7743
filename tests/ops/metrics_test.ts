// Metrics at their seams: storage calls and failures by driver and op, manifest cache hits and
// misses, uploads in progress, GC passes and the inventory's counts; --no-metrics counts nothing.

import { startServer } from "../../src/server.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import {
  assert,
  assertEquals,
  buildImage,
  digest,
  OCI_MANIFEST,
  pushBuiltImage,
  randomBytes,
  withDigest,
  withServer,
} from "../helpers.ts";

/** A sample's value from the text format (undefined when absent). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Scrapes until `check` holds (a 30 s guard for background work, not a timing assertion). */
async function scrapeUntil(url: string, check: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (true) {
    const text = await (await fetch(`${url}/metrics`)).text();
    if (check(text)) return text;
    if (Date.now() > deadline) throw new Error(`metrics never matched:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("metrics: storage calls and failures by driver and op; cache hits and misses", async () => {
  const inner = createMemoryDriver();
  let failing = false;
  const driver: StorageDriver = {
    ...inner,
    kind: inner.kind,
    get: (key) => failing ? Promise.reject(new Error("EIO")) : inner.get(key),
  };
  await using s = await withServer("memory", { driver });
  const image = buildImage([randomBytes(100, 1)], 1);
  await pushBuiltImage(s.client, "app", "v1", image);
  for (let i = 0; i < 3; i++) {
    assertEquals((await s.client.head("/v2/app/manifests/v1")).status, 200);
  }
  assertEquals((await s.client.head("/v2/app/manifests/v2")).status, 404);
  let text = await (await fetch(`${s.url}/metrics`)).text();
  assertEquals(sample(text, 'registry_cache_lookups_total{kind="tag",result="hit"}'), 3);
  assertEquals(
    sample(text, 'registry_cache_lookups_total{kind="tag",result="miss"}'),
    1,
  );
  assertEquals(
    sample(text, 'registry_cache_lookups_total{kind="manifest",result="hit"}'),
    3,
  );
  assert(sample(text, 'registry_storage_operations_total{driver="memory",op="put"}')! >= 4, "puts");
  assertEquals(sample(text, 'registry_storage_failures_total{driver="memory",op="get"}'), 0);
  // A manifest by digest never cached in this repository: the storage read fails.
  failing = true;
  const res = await s.client.get(`/v2/missing/manifests/${image.digest}`);
  failing = false;
  assertEquals(res.status, 503);
  text = await (await fetch(`${s.url}/metrics`)).text();
  assert(sample(text, 'registry_storage_failures_total{driver="memory",op="get"}')! >= 1, text);
  assertEquals(
    sample(text, 'registry_http_requests_total{route="end-3/7/9",method="GET",status="503"}'),
    1,
  );
});

Deno.test("metrics: uploads in progress from their start to their end", async () => {
  await using s = await withServer("memory");
  const scrape = async () =>
    sample(await (await fetch(`${s.url}/metrics`)).text(), "registry_uploads_in_progress");
  assertEquals(await scrape(), 0);
  const first = await s.client.startUpload("app");
  const second = await s.client.startUpload("app");
  assertEquals(await scrape(), 2);
  const data = randomBytes(1000, 3);
  const patched = await s.client.request("PATCH", first, { body: data });
  assertEquals(patched.status, 202);
  const location = new URL(patched.headers.get("location")!, s.url).toString();
  assertEquals((await s.client.request("PUT", withDigest(location, digest(data)))).status, 201);
  assertEquals(await scrape(), 1, "finished");
  assertEquals((await s.client.request("DELETE", second)).status, 204);
  assertEquals(await scrape(), 0, "cancelled");
});

Deno.test("metrics: GC passes, what they freed, and the inventory's counts", async () => {
  // Pushed and deleted first, GC off (with no grace, a pass between a layer and its manifest
  // would sweep the layer); then a server on the same storage runs the online loop.
  const driver = createMemoryDriver();
  const kept = buildImage([randomBytes(1000, 4)], 4);
  const dropped = buildImage([randomBytes(2000, 5)], 5);
  {
    await using s = await withServer("memory", { driver });
    await pushBuiltImage(s.client, "kept", "v1", kept);
    await pushBuiltImage(s.client, "dropped", "v1", dropped);
    const deleted = await s.client.request("DELETE", `/v2/dropped/manifests/${dropped.digest}`);
    assertEquals(deleted.status, 202);
  }
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver,
    gcInterval: 20,
    gcGrace: 0,
  });
  try {
    // The first scrape starts the inventory; a later one shows it.
    const counted = await scrapeUntil(server.url, (t) => sample(t, "registry_blobs") !== undefined);
    assert(sample(counted, "registry_repositories")! >= 1);
    const text = await scrapeUntil(
      server.url,
      (t) => (sample(t, 'registry_gc_freed_objects_total{kind="blobs"}') ?? 0) >= 3,
    );
    assert(sample(text, 'registry_gc_runs_total{outcome="finished"}')! >= 1);
    assert(sample(text, "registry_gc_freed_bytes_total")! >= 2000 + dropped.manifest.length);
    assert(sample(text, "registry_gc_duration_seconds_count")! >= 1);
    // After a pass that freed something, the inventory is taken again: one image is left.
    const after = await scrapeUntil(server.url, (t) => sample(t, "registry_blobs") === 3);
    const bytes = [kept.config, ...kept.layers, kept.manifest].reduce((n, b) => n + b.length, 0);
    assertEquals(sample(after, "registry_stored_bytes"), bytes);
    assertEquals(sample(after, "registry_repositories"), 1);
  } finally {
    await server.shutdown(2000);
  }
});

Deno.test("metrics: --no-metrics counts nothing and /metrics is 404", async () => {
  await using s = await withServer("memory", { ops: { metrics: false } });
  assertEquals((await s.client.get("/v2/")).status, 200);
  const res = await s.client.get("/metrics");
  assertEquals(res.status, 404);
  assertEquals(res.json().errors[0].code, "UNSUPPORTED");
  assertEquals((await s.client.get("/readyz")).status, 200, "the probes stay");
  await pushBuiltImage(s.client, "app", "v1", buildImage([randomBytes(10, 6)], 6));
  assertEquals((await s.client.get("/v2/app/manifests/v1", { accept: OCI_MANIFEST })).status, 200);
});
