// Unit tests of src/store/cache.ts's in-memory cache: hits, writes in storage order, and a load
// that overlapped a write keeps nothing (it would hold an answer older than the write).

import { createMemoryCache } from "../../src/store/cache.ts";
import { parseDigest } from "../../src/grammar.ts";
import { assertEquals, assertRejects } from "../helpers.ts";

const d1 = parseDigest(`sha256:${"1".repeat(64)}`)!;
const d2 = parseDigest(`sha256:${"2".repeat(64)}`)!;

Deno.test("memory cache: a hit is served without loading, synchronously", async () => {
  const cache = createMemoryCache();
  let loads = 0;
  const load = () => {
    loads++;
    return Promise.resolve(d1);
  };
  assertEquals(await cache.read("tag", "app:v1", load), d1);
  assertEquals(cache.read("tag", "app:v1", load), d1);
  assertEquals([loads, cache.stats.hits.tag, cache.stats.misses.tag], [1, 1, 1]);
});

Deno.test("memory cache: a load that overlapped a write does not overwrite its answer", async () => {
  const cache = createMemoryCache();
  const { promise: slow, resolve } = Promise.withResolvers<typeof d1>();
  // A reader misses and reads storage (the old digest)…
  const reading = cache.read("tag", "app:v1", () => slow);
  // …while a writer moves the tag and is answered…
  await cache.write("tag", "app:v1", () => Promise.resolve(), d2);
  // …then the reader's storage answer (older than the write) arrives.
  resolve(d1);
  assertEquals(await reading, d1);
  assertEquals(await cache.read("tag", "app:v1", () => Promise.resolve(d2)), d2);
  assertEquals(cache.read("tag", "app:v1", () => Promise.reject(new Error("no load"))), d2);
});

Deno.test("memory cache: a failed write leaves the key to be read again", async () => {
  const cache = createMemoryCache();
  await cache.read("tag", "app:v1", () => Promise.resolve(d1));
  await assertRejects(() =>
    cache.write("tag", "app:v1", () => Promise.reject(new Error("disk")), d2)
  );
  assertEquals(await cache.read("tag", "app:v1", () => Promise.resolve(d2)), d2);
});

Deno.test("memory cache: blobs and links are not kept (a stat on a local disk)", async () => {
  const cache = createMemoryCache();
  let loads = 0;
  const load = () => Promise.resolve(++loads);
  await cache.read("blob", "sha256:x", load);
  await cache.read("blob", "sha256:x", load);
  assertEquals(loads, 2);
});
