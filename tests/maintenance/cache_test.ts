// The mirror's cache in GC (src/maintenance/cache.ts): cached manifests not pulled for max-age go,
// the cache is kept under max-bytes least recently pulled first, within the grace nothing goes,
// local repositories and blobs they share are never touched, and a dry run deletes nothing.

import { runGc } from "../../src/maintenance/gc.ts";
import type { CacheLimits } from "../../src/maintenance/cache.ts";
import { parseDigest } from "../../src/grammar.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { blobPath } from "../../src/storage/paths.ts";
import { flushPulls, recordPull } from "../../src/store/pulls.ts";
import { createStore, type Store } from "../../src/store/store.ts";
import {
  assert,
  assertEquals,
  buildImage,
  type BuiltImage,
  digest,
  randomBytes,
} from "../helpers.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const cached = (name: string) => name.startsWith("up/");

/** Memory storage whose objects all look a week old, so only pull times decide. */
function oldDriver(): StorageDriver {
  const inner = createMemoryDriver();
  return {
    ...inner,
    stat: async (key) => ({ ...await inner.stat(key), modified: new Date(Date.now() - 7 * DAY) }),
  };
}

async function cache(store: Store, name: string, image: BuiltImage, tag: string) {
  for (const blob of [image.config, ...image.layers]) {
    await store.uploads.commit(name, parseDigest(digest(blob))!, ReadableStream.from([blob]));
  }
  await store.manifests.adopt(name, { tag }, image.manifest, null);
}

const has = async (driver: StorageDriver, data: Uint8Array) =>
  await driver.stat(blobPath(parseDigest(digest(data))!)).then(() => true, () => false);

async function setup() {
  const driver = oldDriver();
  const store = createStore({ driver, recordPulls: true });
  // Pulls have been recorded for a week (`_pulls/_since`): older ones are known not to exist.
  await flushPulls(store.state, Date.now() - 7 * DAY);
  const shared = randomBytes(50_000, 1);
  const images = [0, 1, 2].map((i) => buildImage([randomBytes(100_000, 10 + i)], 10 + i));
  await cache(store, "up/lib/a", images[0], "v1");
  await cache(store, "up/lib/b", images[1], "v1");
  await cache(store, "up/lib/c", images[2], "v1");
  // A local repository using a layer the cache also holds.
  const local = buildImage([shared], 20);
  const withShared = buildImage([shared, randomBytes(1000, 21)], 22);
  await cache(store, "up/lib/shared", withShared, "v1");
  for (const blob of [local.config, ...local.layers]) {
    await store.uploads.commit("team/app", parseDigest(digest(blob))!, ReadableStream.from([blob]));
  }
  await store.manifests.put("team/app", { tag: "v1" }, local.manifest, null);
  return { driver, store, images, local, withShared, shared };
}

const gc = (store: Store, limits: Omit<CacheLimits, "isCached">, dryRun = false) =>
  runGc(store.state, {
    grace: HOUR,
    untagged: false,
    dryRun,
    cache: { isCached: cached, ...limits },
  });

Deno.test("cache gc: manifests not pulled for max-age go, their blobs with them", async () => {
  const { driver, store, images, local, shared } = await setup();
  const now = Date.now();
  recordPull(store.state, "up/lib/a", parseDigest(images[0].digest)!, "v1", now - 2 * HOUR);
  recordPull(store.state, "up/lib/b", parseDigest(images[1].digest)!, "v1", now - 3 * DAY);
  await flushPulls(store.state);
  recordPull(store.state, "up/lib/c", parseDigest(images[2].digest)!, undefined, now - 2 * HOUR);

  const report = await gc(store, { maxAge: DAY });
  // b (3 days) and the never-pulled up/lib/shared (a week old) go; a and c stay.
  assertEquals(report.evicted?.manifests, 2);
  assertEquals(report.evicted?.tags, 2);
  assertEquals(await store.manifests.get("up/lib/b", { tag: "v1" }), undefined);
  assert(!await has(driver, images[1].layers[0]), "b's layer swept");
  assert(!await has(driver, images[1].manifest), "b's manifest bytes swept");
  assert(await store.manifests.get("up/lib/a", { tag: "v1" }), "a stays");
  assert(await store.manifests.get("up/lib/c", { digest: parseDigest(images[2].digest)! }));
  assert(await has(driver, images[2].layers[0]));
  // The local repository and the layer it shares with the cache are untouched.
  assert(await store.manifests.get("team/app", { tag: "v1" }));
  assert(await has(driver, shared));
  assert(await has(driver, local.config));
});

Deno.test("cache gc: over max-bytes, the least recently pulled go until it fits", async () => {
  const { driver, store, images, withShared } = await setup();
  const now = Date.now();
  recordPull(store.state, "up/lib/a", parseDigest(images[0].digest)!, "v1", now - 5 * HOUR);
  recordPull(store.state, "up/lib/b", parseDigest(images[1].digest)!, "v1", now - 3 * HOUR);
  recordPull(store.state, "up/lib/c", parseDigest(images[2].digest)!, "v1", now - 4 * HOUR);
  recordPull(store.state, "up/lib/shared", parseDigest(withShared.digest)!, "v1", now - 2 * HOUR);
  // The cache alone holds three 100 kB layers plus small blobs (the shared layer is local's too).
  const report = await gc(store, { maxBytes: 250_000 });
  assert(report.evicted!.cachedBytes > 300_000, `${report.evicted!.cachedBytes}`);
  assertEquals(report.evicted?.manifests, 1, "one image is enough");
  assertEquals(await store.manifests.get("up/lib/a", { tag: "v1" }), undefined, "a, pulled first");
  assert(!await has(driver, images[0].layers[0]));
  for (const name of ["up/lib/b", "up/lib/c", "up/lib/shared"]) {
    assert(await store.manifests.get(name, { tag: "v1" }), `${name} stays`);
  }
  // Within the limit now: another pass drops nothing.
  assertEquals((await gc(store, { maxBytes: 250_000 })).evicted?.manifests, 0);
});

Deno.test("cache gc: nothing pulled within the grace goes, whatever the limits", async () => {
  const { store, images } = await setup();
  for (const [i, name] of ["up/lib/a", "up/lib/b", "up/lib/c"].entries()) {
    recordPull(store.state, name, parseDigest(images[i].digest)!, "v1");
  }
  const report = await gc(store, { maxAge: 1, maxBytes: 1 });
  // Only the never-pulled one (a week old) may go.
  assertEquals(report.evicted?.manifests, 1);
  for (const name of ["up/lib/a", "up/lib/b", "up/lib/c"]) {
    assert(await store.manifests.get(name, { tag: "v1" }), `${name} stays`);
  }
});

Deno.test("cache gc: a dry run counts and deletes nothing", async () => {
  const { driver, store, images } = await setup();
  const before = await driver.list("repositories/up/lib");
  const report = await gc(store, { maxAge: DAY }, true);
  assertEquals(report.evicted?.manifests, 4);
  assert(report.swept.blobs >= 4, `the sweep counts their blobs: ${JSON.stringify(report.swept)}`);
  assertEquals((await driver.list("repositories/up/lib")).sort(), before.sort());
  assert(await has(driver, images[0].layers[0]));
});

Deno.test("cache gc: without limits the cache is ordinary content", async () => {
  const { store } = await setup();
  const report = await runGc(store.state, { grace: 0, untagged: false });
  assertEquals(report.evicted, undefined);
  assert(await store.manifests.get("up/lib/b", { tag: "v1" }));
});

Deno.test("cache gc: nothing counts as unpulled for longer than pulls have been recorded", async () => {
  const driver = oldDriver();
  const store = createStore({ driver, recordPulls: true });
  await flushPulls(store.state, Date.now() - 2 * HOUR); // recording began two hours ago
  const image = buildImage([randomBytes(1000, 30)], 30);
  await cache(store, "up/lib/old", image, "v1"); // written "a week ago", never pulled
  assertEquals((await gc(store, { maxAge: DAY })).evicted?.manifests, 0);
  assertEquals((await gc(store, { maxAge: HOUR })).evicted?.manifests, 1);
});
