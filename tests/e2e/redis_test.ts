// Instances on one S3 prefix sharing a Redis: a tag moved on A is never served old by B once A's
// PUT was answered; deletes are seen at once; Redis killed and restarted under pushes and pulls
// fails nothing that started after the kill; an instance SIGKILLed holding a lock is waited out.

import {
  assert,
  assertEquals,
  buildImage,
  type BuiltImage,
  digest,
  OCI_MANIFEST,
  pushBuiltImage,
  randomBytes,
  type RegistryClient,
  registryClient,
  S3_IGNORE,
  S3_SETTINGS,
  s3Fixture,
  spawnRegistry,
  type TestServer,
  withServer,
} from "../helpers.ts";
import { createS3Driver } from "../../src/storage/s3/driver.ts";
import { REDIS_IGNORE, startRedis, type TestRedis } from "../redis_helpers.ts";

const ignore = S3_IGNORE || REDIS_IGNORE;

/** A and B on a fresh prefix, sharing a fresh Redis. */
function withRedis(
  title: string,
  fn: (a: TestServer, b: TestServer, redis: TestRedis, prefix: string) => Promise<void>,
  lease = 30_000,
) {
  Deno.test({
    name: `s3 + redis: ${title}`,
    ignore,
    async fn() {
      await using fixture = s3Fixture();
      await using redis = await startRedis();
      const settings = { url: redis.url, lease, storage: `s3:${fixture.prefix}` };
      const driver = () => createS3Driver({ ...S3_SETTINGS!, prefix: fixture.prefix });
      await using a = await withServer("s3", { driver: driver(), redis: settings });
      await using b = await withServer("s3", { driver: driver(), redis: settings });
      await fn(a, b, redis, fixture.prefix);
    },
  });
}

/** Images sharing a config, each a different manifest; pushed by digest (untagged). */
async function pushVersions(client: RegistryClient, name: string, count: number) {
  const layer = randomBytes(3000, 11);
  const images: BuiltImage[] = [];
  for (let i = 0; i < count; i++) {
    const image = buildImage([layer, randomBytes(100, 100 + i)], 500 + i);
    await pushBuiltImage(client, name, undefined, image);
    images.push(image);
  }
  return images;
}

const tagOf = (res: { headers: Headers }) => res.headers.get("docker-content-digest");

withRedis(
  "A moves a tag while B serves it: B never goes back once A's PUT was answered",
  async (a, b) => {
    const versions = await pushVersions(a.client, "coh/app", 12);
    const index = new Map(versions.map((v, i) => [v.digest, i]));
    let answered = -1; // the last version whose PUT A answered
    let done = false;
    const seen: number[][] = [];
    const reader = async (r: number) => {
      const history: number[] = [];
      seen[r] = history;
      while (!done) {
        const floor = answered;
        const res = await b.client.get("/v2/coh/app/manifests/latest", { accept: OCI_MANIFEST });
        if (res.status === 404) {
          assert(floor < 0, `404 after version ${floor} was answered`);
          continue;
        }
        assertEquals(res.status, 200, res.text);
        const at = index.get(digest(res.body));
        assert(at !== undefined, "a known version");
        assertEquals(tagOf(res), digest(res.body));
        assert(at >= floor, `reader ${r} got version ${at} after version ${floor} was answered`);
        assert(
          at >= (history.at(-1) ?? -1),
          `reader ${r} went back from ${history.at(-1)} to ${at}`,
        );
        history.push(at);
      }
    };
    const readers = Array.from({ length: 6 }, (_, r) => reader(r));
    for (const [i, version] of versions.entries()) {
      const res = await a.client.pushManifest("coh/app", "latest", version.manifest, OCI_MANIFEST);
      assertEquals(res.status, 201, res.text);
      answered = i;
      // A few reads between moves, so that B caches each version.
      await new Promise((r) => setTimeout(r, 30));
    }
    done = true;
    await Promise.all(readers);
    const reads = seen.reduce((n, h) => n + h.length, 0);
    assert(reads > versions.length * 3, `enough reads on B: ${reads}`);
    const { cache } = b.server.store.state;
    assertEquals(cache.kind, "redis");
    assert(
      cache.stats.hits.tag > 0,
      `B served from the shared cache: ${JSON.stringify(cache.stats)}`,
    );
    assertEquals(cache.stats.failures, 0);

    // Deleted on A: a 404 on B at once, by tag and (the revision) by digest.
    const last = versions.at(-1)!;
    assertEquals((await b.client.head(`/v2/coh/app/manifests/${last.digest}`)).status, 200);
    assertEquals((await a.client.request("DELETE", "/v2/coh/app/manifests/latest")).status, 202);
    assertEquals((await b.client.head("/v2/coh/app/manifests/latest")).status, 404);
    assertEquals(
      (await a.client.request("DELETE", `/v2/coh/app/manifests/${last.digest}`)).status,
      202,
    );
    assertEquals((await b.client.get(`/v2/coh/app/manifests/${last.digest}`)).status, 404);
    // Tagged again on A: B serves it at once (a cached "no such tag" is not kept past the write).
    const again = await a.client.pushManifest("coh/app", "latest", versions[0].manifest);
    assertEquals(again.status, 201);
    assertEquals(tagOf(await b.client.head("/v2/coh/app/manifests/latest")), versions[0].digest);
    // A blob unlinked on A is gone on B at once (the cached link goes with it).
    const layer = digest(versions[0].layers[1]);
    assertEquals((await b.client.head(`/v2/coh/app/blobs/${layer}`)).status, 200);
    assertEquals((await a.client.request("DELETE", `/v2/coh/app/blobs/${layer}`)).status, 202);
    assertEquals((await b.client.head(`/v2/coh/app/blobs/${layer}`)).status, 404);
  },
);

withRedis(
  "Redis killed and restarted during pushes and pulls: only requests in flight at the kill may fail",
  async (a, b, redis) => {
    /** Every request made, with when it started and ended and how it went. */
    const log: { start: number; end: number; ok: boolean; what: string }[] = [];
    const timed = async <T>(what: string, work: () => Promise<T>, ok: (r: T) => boolean) => {
      const start = performance.now();
      const result = await work();
      log.push({ start, end: performance.now(), ok: ok(result), what });
      return result;
    };
    const acked = new Map<string, BuiltImage>(); // tag → the image its PUT last acknowledged
    const order = new Map<string, number>(); // manifest digest → its place in its pusher's run
    let stop = false;
    let wrong = 0;

    const pusher = async (client: RegistryClient, w: number) => {
      for (let n = 0; !stop; n++) {
        const image = buildImage([randomBytes(2000 + n, w * 1000 + n)], w * 1000 + n);
        let pushed = true;
        for (const blob of [image.config, ...image.layers]) {
          const res = await timed(
            "push blob",
            () => client.pushBlob("kill/app", blob),
            (r) => r.status === 201,
          );
          if (res.status !== 201) pushed = false;
        }
        if (!pushed) continue;
        const tag = `w${w}`;
        order.set(image.digest, n);
        const res = await timed(
          "push manifest",
          () => client.pushManifest("kill/app", tag, image.manifest, OCI_MANIFEST),
          (r) => r.status === 201,
        );
        if (res.status === 201) acked.set(tag, image);
      }
    };
    const puller = async (client: RegistryClient) => {
      while (!stop) {
        for (const [tag, image] of [...acked]) {
          const floor = order.get(image.digest)!;
          const res = await timed(
            "pull manifest",
            () => client.get(`/v2/kill/app/manifests/${tag}`, { accept: OCI_MANIFEST }),
            (r) => r.status === 200,
          );
          // The tag may have moved on since (a PUT not answered yet), never back.
          const served = order.get(digest(res.body));
          if (res.status === 200 && (served === undefined || served < floor)) wrong++;
          const blob = await timed(
            "pull blob",
            () => client.get(`/v2/kill/app/blobs/${digest(image.layers[0])}`),
            (r) => r.status === 200,
          );
          if (blob.status === 200 && digest(blob.body) !== digest(image.layers[0])) wrong++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const workers = [
      pusher(a.client, 1),
      pusher(b.client, 2),
      puller(a.client),
      puller(b.client),
    ];
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = performance.now();
    await redis.kill();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    const restartedAt = performance.now();
    await new Promise((r) => setTimeout(r, 2500));
    stop = true;
    await Promise.all(workers);

    const failed = log.filter((r) => !r.ok);
    const after = failed.filter((r) => r.start >= killedAt);
    assertEquals(after, [], "requests that started after the kill all succeeded");
    for (const r of failed) assert(r.end >= killedAt, `a failure before the kill: ${r.what}`);
    assertEquals(wrong, 0, "no wrong answer");
    const during = log.filter((r) => r.start >= killedAt && r.start < restartedAt).length;
    const later = log.filter((r) => r.start >= restartedAt).length;
    assert(during > 0 && later > 10, `requests during (${during}) and after (${later}) the outage`);
    // Both instances use the cache again once it is back, and agree with storage.
    for (const server of [a, b]) {
      for (const [tag, image] of acked) {
        const res = await server.client.get(`/v2/kill/app/manifests/${tag}`, {
          accept: OCI_MANIFEST,
        });
        assertEquals(digest(res.body), image.digest, `${tag} on ${server.url}`);
      }
    }
    assert(b.server.store.state.cache.stats.failures > 0, "the outage was noticed");
  },
);

Deno.test({
  name: "s3 + redis: an instance SIGKILLed while holding a lock is waited out for the lease",
  ignore,
  async fn() {
    await using fixture = s3Fixture();
    await using redis = await startRedis();
    const s3 = S3_SETTINGS!;
    const lease = 2_000;
    // A: a subprocess, so that it can die holding the lock.
    const a = await spawnRegistry([
      ...["--storage", "s3", "--s3-endpoint", s3.endpoint, "--s3-bucket", s3.bucket],
      ...["--s3-prefix", fixture.prefix, "--s3-access-key", s3.accessKeyId],
      ...["--s3-secret-key", s3.secretAccessKey, "--redis", redis.url, "--redis-lease", "2s"],
    ]);
    // Its storage identity as main.ts builds it (src/server.ts storageIdentity).
    const storage = `s3:${s3.endpoint}/${s3.bucket}/${fixture.prefix}`;
    await using b = await withServer("s3", {
      driver: fixture.driver,
      redis: { url: redis.url, lease, storage },
    });
    try {
      const data = randomBytes(300_000, 21);
      const location = await registryClient(a.url).startUpload("lock/app");
      const first = await fetch(location, {
        method: "PATCH",
        body: data.slice(0, 100_000),
        headers: { "content-range": "0-99999" },
      });
      assertEquals(first.status, 202, await first.text());
      const next = new URL(first.headers.get("location")!, a.url);
      // A second chunk that never ends: A holds the upload's lock while it streams.
      const { readable, writable } = new TransformStream<Uint8Array>();
      const writer = writable.getWriter();
      const stalled = fetch(next, {
        method: "PATCH",
        body: readable,
        headers: { "content-range": "100000-299999" },
      }).catch(() => undefined);
      await writer.write(data.slice(100_000, 150_000));
      let locked = "";
      for (let i = 0; i < 100 && !locked.includes("lock:upload:"); i++) {
        await new Promise((r) => setTimeout(r, 50));
        locked = await redis.command("KEYS", "*lock:upload:*");
      }
      assert(locked.includes("lock:upload:"), `A holds the upload's lock: ${locked}`);
      await a.stop("SIGKILL");
      await writer.abort().catch(() => {});
      await stalled;

      // B takes over the session once A's lease has run out; A's unfinished chunk never landed.
      const onB = `${b.url}${next.pathname}${next.search}`;
      const chunk = await b.client.request("PATCH", onB, {
        body: data.slice(100_000),
        headers: { "content-range": "100000-299999" },
      });
      assertEquals(chunk.status, 202, chunk.text);
      const put = await b.client.request(
        "PUT",
        `${b.url}${new URL(chunk.headers.get("location")!, b.url).pathname}?digest=${digest(data)}`,
      );
      assertEquals(put.status, 201, put.text);
      assertEquals((await b.client.get(`/v2/lock/app/blobs/${digest(data)}`)).body, data);
    } finally {
      await a.stop("SIGKILL");
    }
  },
});
