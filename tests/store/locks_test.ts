// Unit tests of src/store/locks.ts: per-key promise chains run in arrival order, one at a time.
// A rejection does not poison the chain, different keys do not wait, and the map cleans up.

import { createLocks } from "../../src/store/locks.ts";
import { assertEquals, assertRejects } from "../helpers.ts";

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("locks: work on one key runs one at a time, in arrival order", async () => {
  const withLock = createLocks();
  const events: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const job = (id: number, ms: number) =>
    withLock("k", async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      events.push(`start ${id}`);
      await tick(ms);
      events.push(`end ${id}`);
      running--;
      return id;
    });
  const results = await Promise.all([job(1, 15), job(2, 1), job(3, 5)]);
  assertEquals(results, [1, 2, 3]);
  assertEquals(maxRunning, 1);
  assertEquals(events, ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]);
});

Deno.test("locks: different keys run concurrently", async () => {
  const withLock = createLocks();
  const events: string[] = [];
  const a = withLock("a", async () => {
    events.push("a start");
    await tick(20);
    events.push("a end");
  });
  const b = withLock("b", async () => {
    events.push("b start");
    await tick(1);
    events.push("b end");
  });
  await Promise.all([a, b]);
  assertEquals(events, ["a start", "b start", "b end", "a end"]);
});

Deno.test("locks: a rejection reaches its caller and does not poison the chain", async () => {
  const withLock = createLocks();
  const failing = withLock("k", async () => {
    await tick(5);
    throw new Error("boom");
  });
  const next = withLock("k", () => Promise.resolve("after"));
  await assertRejects(() => failing, Error, "boom");
  assertEquals(await next, "after");
  // A synchronous throw inside the work is a rejection too.
  await assertRejects(
    () =>
      withLock("k", () => {
        throw new Error("sync");
      }),
    Error,
    "sync",
  );
  assertEquals(await withLock("k", () => Promise.resolve(1)), 1);
});

Deno.test("locks: the map is cleaned up (the last waiter deletes the key)", async () => {
  // Observe the internal map through Map.prototype hooks on a fresh lock set.
  const sizes: number[] = [];
  const original = Map.prototype.delete;
  let tails: Map<unknown, unknown> | undefined;
  Map.prototype.delete = function (this: Map<unknown, unknown>, key: unknown) {
    if (typeof key === "string" && /^(key-|bad)/.test(key)) tails = this;
    return original.call(this, key);
  };
  try {
    const withLock = createLocks();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        withLock(`key-${i % 5}`, async () => {
          await tick();
          return i;
        })),
    );
    await assertRejects(() => withLock("bad", () => Promise.reject(new Error("x"))));
    sizes.push(tails?.size ?? -1);
  } finally {
    Map.prototype.delete = original;
  }
  assertEquals(sizes, [0], "no keys left in the lock map");
});
