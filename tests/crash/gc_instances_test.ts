// GC across processes: instance A (a subprocess) takes pushes of images sharing base layers while
// instance B (another subprocess, same S3 prefix and Redis) runs online GC with no grace, pass
// after pass. No 2xx push loses a layer: every tag believed pulls whole from both, fsck is clean.
// STRESS_SECONDS (default 10; CI 30) as tests/crash/stress_test.ts; needs S3 and redis-server.

import { runFsck } from "../../src/maintenance/fsck.ts";
import { createState } from "../../src/store/state.ts";
import {
  assert,
  assertEquals,
  digest,
  randomBytes,
  type RegistryClient,
  registryClient,
  S3_IGNORE,
  S3_SETTINGS,
  s3Fixture,
  spawnRegistry,
} from "../helpers.ts";
import { buildImage, type LayeredImage, prng, pullImage } from "../maintenance/gc_helpers.ts";
import { REDIS_IGNORE, startRedis } from "../redis_helpers.ts";

const SECONDS = Number(Deno.env.get("STRESS_SECONDS") ?? "10");
const PUSHERS = 3;

Deno.test({
  name: "s3 + redis: pushes on A while B collects garbage with no grace lose nothing acknowledged",
  ignore: S3_IGNORE || REDIS_IGNORE,
  async fn() {
    await using fixture = s3Fixture();
    await using redis = await startRedis();
    const s3 = S3_SETTINGS!;
    const common = [
      ...["--storage", "s3", "--s3-endpoint", s3.endpoint, "--s3-bucket", s3.bucket],
      ...["--s3-prefix", fixture.prefix, "--s3-access-key", s3.accessKeyId],
      ...["--s3-secret-key", s3.secretAccessKey, "--redis", redis.url],
    ];
    await using a = await spawnRegistry(common);
    await using b = await spawnRegistry([
      ...common,
      ...["--gc-interval", "1s", "--gc-grace", "0s", "--gc-untagged"],
    ]);
    const onA = registryClient(a.url);
    const onB = registryClient(b.url);
    const random = prng(7);
    const base = Array.from({ length: 5 }, (_, i) => randomBytes(3000 + 2000 * i, 700 + i));
    const recycled = Array.from({ length: 12 }, (_, i) => randomBytes(800 + 100 * i, 800 + i));
    const believed = new Map<string, LayeredImage>();
    const deadline = Date.now() + SECONDS * 1000;
    const stats = { pushed: 0, retried: 0, pulled: 0, deleted: 0 };
    let counter = 0;

    async function pusher(): Promise<void> {
      while (Date.now() < deadline) {
        const n = ++counter;
        // Layers come back: one of a deleted image may be pushed again while B sweeps it.
        const layers = [
          ...new Set([base[n % 5], recycled[Math.floor(random() * recycled.length)]]),
        ];
        const image = buildImage(layers, 9000 + n);
        while (Date.now() < deadline + 10_000) {
          if (await pushOnce(onA, `t${n}`, image)) break;
          stats.retried++; // B's sweep took a layer before the manifest: push again
        }
        believed.set(`t${n}`, image);
        stats.pushed++;
      }
    }
    async function puller(): Promise<void> {
      while (Date.now() < deadline) {
        const entries = [...believed];
        if (entries.length > 0) {
          const [tag, image] = entries[Math.floor(random() * entries.length)];
          await pullImage(random() < 0.5 ? onA : onB, "gc/app", tag, image);
          stats.pulled++;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    async function deleter(): Promise<void> {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50 + random() * 100));
        if (believed.size < 4) continue;
        const [tag, image] = believed.entries().next().value!; // the oldest
        believed.delete(tag);
        // By digest: the manifest goes, and with it the last reference to some layers.
        const res = await onA.request("DELETE", `/v2/gc/app/manifests/${image.digest}`);
        assert(res.status === 202 || res.status === 404, `delete ${tag}: ${res.text}`);
        stats.deleted++;
      }
    }
    await Promise.all([...Array.from({ length: PUSHERS }, pusher), puller(), deleter()]);

    const passes = b.lines.filter((line) => line.includes('"gc finished"'));
    const swept = passes.reduce((n, line) => n + JSON.parse(line)["gc.swept.blobs"], 0);
    console.log(
      `${stats.pushed} pushes (${stats.retried} retried), ${stats.deleted} deletes, ` +
        `${stats.pulled} pulls, ` +
        `${passes.length} gc passes on B sweeping ${swept} blobs`,
    );
    assert(stats.pushed >= 5 && passes.length >= 3, JSON.stringify(stats));
    for (const [tag, image] of believed) {
      await pullImage(onA, "gc/app", tag, image);
      await pullImage(onB, "gc/app", tag, image);
    }
    await b.stop();
    await a.stop();
    const state = createState({ driver: fixture.driver, sharedStorage: true });
    assertEquals((await runFsck(state)).problems, []);
  },
});

/** Blobs (skipping those HEAD finds, as docker does), then the manifest; false: push again. */
async function pushOnce(client: RegistryClient, tag: string, image: LayeredImage) {
  for (const blob of [image.config, ...image.layers]) {
    const head = await client.head(`/v2/gc/app/blobs/${digest(blob)}`);
    if (head.status === 200) continue;
    const res = await client.pushBlob("gc/app", blob);
    assertEquals(res.status, 201, `push blob: ${res.text}`);
  }
  const res = await client.pushManifest("gc/app", tag, image.manifest);
  if (res.status === 400 && res.text.includes("MANIFEST_BLOB_UNKNOWN")) return false;
  assertEquals(res.status, 201, `push manifest: ${res.text}`);
  return true;
}
