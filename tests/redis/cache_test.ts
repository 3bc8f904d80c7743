// Unit tests of src/redis/cache.ts against a real redis-server: two instances' caches on one Redis,
// hits across them, the fill that lost to a write, overlapping writes, marks and epochs.

import { connectRedis, type RedisConnection } from "../../src/redis/client.ts";
import { createRedisCache } from "../../src/redis/cache.ts";
import { parseDigest } from "../../src/grammar.ts";
import { assertEquals } from "../helpers.ts";
import { REDIS_IGNORE, startRedis } from "../redis_helpers.ts";

const d1 = parseDigest(`sha256:${"1".repeat(64)}`)!;
const d2 = parseDigest(`sha256:${"2".repeat(64)}`)!;
const d3 = parseDigest(`sha256:${"3".repeat(64)}`)!;
const never = () => Promise.reject(new Error("storage was read"));
/** Each instance begins a new epoch when it connects (src/redis/cache.ts): start both first. */
async function started(...caches: ReturnType<typeof createRedisCache>[]) {
  for (const cache of caches) await cache.read("blob", "warm-up", () => Promise.resolve(null));
}
/** A miss's fill is sent after the answer, not awaited: let it land. */
const filled = () => new Promise((r) => setTimeout(r, 30));

function redisTest(
  name: string,
  fn: (connect: () => Promise<RedisConnection>) => Promise<void>,
) {
  Deno.test({
    name: `redis cache: ${name}`,
    ignore: REDIS_IGNORE,
    async fn() {
      await using redis = await startRedis();
      const connections: RedisConnection[] = [];
      try {
        await fn(async () => {
          const connection = await connectRedis(redis.url);
          connections.push(connection);
          return connection;
        });
      } finally {
        for (const connection of connections) await connection.close();
      }
    },
  });
}

redisTest(
  "what one instance loaded, another serves; manifests keep their bytes",
  async (connect) => {
    const a = createRedisCache(await connect(), { namespace: "t" });
    const b = createRedisCache(await connect(), { namespace: "t" });
    await started(a, b);
    assertEquals(await a.read("tag", "app:v1", () => Promise.resolve(d1)), d1);
    assertEquals(await b.read("tag", "app:v1", never), d1);
    const manifest = { mediaType: "application/x", bytes: new Uint8Array([0, 10, 255, 13, 10]) };
    await a.read("manifest", "app@x", () => Promise.resolve(manifest));
    assertEquals(await b.read("manifest", "app@x", never), manifest);
    await a.read("link", "app@y", () => Promise.resolve(null));
    assertEquals(await b.read("link", "app@y", never), null);
    assertEquals(b.stats.hits, { tag: 1, manifest: 1, blob: 0, link: 1 });
    // A third instance connecting begins a new epoch: what was kept before is read again.
    const c = createRedisCache(await connect(), { namespace: "t" });
    assertEquals(await c.read("tag", "app:v1", () => Promise.resolve(d2)), d2);
  },
);

redisTest("a fill that overlapped a write on another instance is dropped", async (connect) => {
  const a = createRedisCache(await connect(), { namespace: "t" });
  const b = createRedisCache(await connect(), { namespace: "t" });
  await started(a, b);
  const { promise: slow, resolve } = Promise.withResolvers<typeof d1>();
  const reading = b.read("tag", "app:v1", () => slow);
  await new Promise((r) => setTimeout(r, 20)); // B has claimed the key and is reading storage
  await a.write("tag", "app:v1", () => Promise.resolve(), d2);
  resolve(d1); // B's storage answer, older than A's write
  assertEquals(await reading, d1);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(await b.read("tag", "app:v1", never), d2);
});

redisTest(
  "during a write the key is read from storage; overlapping writes leave it unknown",
  async (connect) => {
    const a = createRedisCache(await connect(), { namespace: "t" });
    const b = createRedisCache(await connect(), { namespace: "t" });
    await started(a, b);
    await a.read("tag", "app:v1", () => Promise.resolve(d1));
    const first = Promise.withResolvers<void>();
    const writing = a.write("tag", "app:v1", () => first.promise, d2);
    await new Promise((r) => setTimeout(r, 20));
    let loads = 0;
    assertEquals(await b.read("tag", "app:v1", () => (loads++, Promise.resolve(d1))), d1);
    assertEquals(loads, 1, "the marked key was read from storage");
    // A second write overlaps the first: the outcome is whichever landed last, so neither is kept.
    const second = b.write("tag", "app:v1", () => Promise.resolve(), d3);
    await second;
    first.resolve();
    await writing;
    assertEquals(await b.read("tag", "app:v1", () => Promise.resolve(d3)), d3);
    assertEquals(await a.read("tag", "app:v1", never), d3);
  },
);

redisTest("clear begins a new epoch: nothing before it is served", async (connect) => {
  const a = createRedisCache(await connect(), { namespace: "t" });
  const b = createRedisCache(await connect(), { namespace: "t" });
  await started(a, b);
  await a.read("blob", "sha256:z", () => Promise.resolve(42));
  await filled();
  assertEquals(await b.read("blob", "sha256:z", never), 42);
  await a.clear();
  assertEquals(await b.read("blob", "sha256:z", () => Promise.resolve(7)), 7);
  // Another registry on the same Redis (another namespace) sees none of it.
  const other = createRedisCache(await connect(), { namespace: "u" });
  assertEquals(await other.read("blob", "sha256:z", () => Promise.resolve(9)), 9);
});
