// Unit tests of src/store/pulls.ts: pulls recorded in memory by manifest GETs, written in batches
// (one object per repository per flush, later times winning), read back merged, pruned.

import { parseDigest } from "../../src/grammar.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import type { PutOptions, StorageDriver } from "../../src/storage/driver.ts";
import { pullsPath, pullsSincePath } from "../../src/storage/paths.ts";
import { flushPulls, lastPulls, prunePulls, recordPull } from "../../src/store/pulls.ts";
import { createStore } from "../../src/store/store.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  buildImage,
  digest as digestOf,
  randomBytes,
} from "../helpers.ts";

const D1 = parseDigest(`sha256:${"1".repeat(64)}`)!;
const D2 = parseDigest(`sha256:${"2".repeat(64)}`)!;

/** A memory driver that counts puts. */
function countingDriver(): StorageDriver & { puts: string[] } {
  const inner = createMemoryDriver();
  const puts: string[] = [];
  return {
    ...inner,
    puts,
    put(key: string, data, options?: PutOptions) {
      puts.push(key);
      return inner.put(key, data, options);
    },
  };
}

Deno.test("pulls: recorded in memory, one write per repository per flush", async () => {
  const driver = countingDriver();
  const store = createStore({ driver, recordPulls: true });
  for (let i = 0; i < 100; i++) recordPull(store.state, "a/app", D1, "v1", 1000 + i);
  recordPull(store.state, "b/app", D2, undefined, 5000);
  assertEquals(driver.puts, [], "no write per pull");
  assertEquals(await lastPulls(store.state, "a/app"), {
    tags: { v1: 1099 },
    manifests: { [D1.value]: 1099 },
  });
  assertEquals(await flushPulls(store.state), 2);
  // And, once, when recording began (`_pulls/_since`).
  assertEquals(driver.puts.sort(), [pullsSincePath, pullsPath("a/app"), pullsPath("b/app")]);
  assertEquals(await flushPulls(store.state), 0, "nothing pending");

  // Later flushes merge; the latest time wins, an older one does not win back.
  recordPull(store.state, "a/app", D2, "v2", 2000);
  recordPull(store.state, "a/app", D1, "v1", 500);
  await flushPulls(store.state);
  assertEquals(await lastPulls(store.state, "a/app"), {
    tags: { v1: 1099, v2: 2000 },
    manifests: { [D1.value]: 1099, [D2.value]: 2000 },
  });
  // Another process (after a restart) reads what was written.
  const again = createStore({ driver, recordPulls: true });
  assertEquals((await lastPulls(again.state, "a/app")).tags, { v1: 1099, v2: 2000 });
});

Deno.test("pulls: a manifest GET records its tag and digest; off unless asked for", async () => {
  const image = buildImage([randomBytes(100, 1)], 1);
  for (const recordPulls of [true, false]) {
    const driver = createMemoryDriver();
    const store = createStore({ driver, recordPulls });
    for (const blob of [image.config, ...image.layers]) {
      await store.uploads.commit(
        "team/app",
        parseDigest(digestOf(blob))!,
        ReadableStream.from([blob]),
      );
    }
    const { digest } = await store.manifests.put("team/app", { tag: "v1" }, image.manifest, null);
    const before = Date.now();
    await store.manifests.get("team/app", { tag: "v1" });
    await store.manifests.get("team/app", { tag: "v2" }); // missing: not a pull
    const times = await lastPulls(store.state, "team/app");
    if (!recordPulls) {
      assertEquals(times, { tags: {}, manifests: {} });
      continue;
    }
    assertEquals(Object.keys(times.tags), ["v1"]);
    assert(times.tags.v1 >= before);
    assertEquals(Object.keys(times.manifests), [digest.value]);
  }
});

Deno.test("pulls: a failed flush keeps the pulls for the next one", async () => {
  const driver = countingDriver();
  let failing = true;
  const flaky: StorageDriver = {
    ...driver,
    put: (key, data, options) =>
      failing ? Promise.reject(new Error("disk full")) : driver.put(key, data, options),
  };
  const store = createStore({ driver: flaky, recordPulls: true });
  recordPull(store.state, "a", D1, "v1", 100);
  recordPull(store.state, "b", D2, "v2", 200);
  await assertRejects(() => flushPulls(store.state));
  recordPull(store.state, "a", D1, "v1", 300);
  failing = false;
  assertEquals(await flushPulls(store.state), 2);
  assertEquals((await lastPulls(store.state, "a")).tags, { v1: 300 });
  assertEquals((await lastPulls(store.state, "b")).tags, { v2: 200 });
});

Deno.test("pulls: pruning drops the times of what is gone", async () => {
  const driver = createMemoryDriver();
  const store = createStore({ driver, recordPulls: true });
  recordPull(store.state, "a", D1, "v1", 100);
  recordPull(store.state, "a", D2, "v2", 200);
  await flushPulls(store.state);
  await prunePulls(store.state, "a", { tags: new Set(["v2"]), manifests: new Set([D2.value]) });
  assertEquals(await lastPulls(store.state, "a"), {
    tags: { v2: 200 },
    manifests: { [D2.value]: 200 },
  });
  await prunePulls(store.state, "a", { tags: new Set(), manifests: new Set() });
  assertEquals(await driver.list("_pulls"), ["_since"], "a's record is gone");
});
