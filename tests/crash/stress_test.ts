// Stress: pushes of images sharing base layers, tag and manifest deletes, and pulls, while GC runs
// back to back with no grace; every tag the test believes in pulls intact, and fsck is clean.
// STRESS_SECONDS (default 10; CI 30) per run, STRESS_SEEDS (default 1,2,3): `deno task test:crash`.

import { runFsck } from "../../src/maintenance/fsck.ts";
import { type GcReport, runGc } from "../../src/maintenance/gc.ts";
import {
  assert,
  assertEquals,
  type Bytes,
  digest,
  imageIndex,
  jsonBytes,
  OCI_INDEX,
  OCI_MANIFEST,
  randomBytes,
  type RegistryClient,
  withServer,
} from "../helpers.ts";
import { buildImage, type LayeredImage, prng, pullImage } from "../maintenance/gc_helpers.ts";

const SECONDS = Number(Deno.env.get("STRESS_SECONDS") ?? "10");
const SEEDS = (Deno.env.get("STRESS_SEEDS") ?? "1,2,3").split(",").map(Number);
const REPOSITORIES = ["stress/a", "stress/b"];
const PUSHERS = 3;

/** What a tag holds: one image, or an index over several (children pushed by digest). */
interface Pushed {
  repository: string;
  tag: string;
  images: LayeredImage[];
  index?: Bytes;
}

for (const kind of ["fs", "memory"] as const) {
  for (const seed of SEEDS) {
    Deno.test(`${kind}: stress seed ${seed}: push, delete and pull while gc runs`, async () => {
      await using t = await withServer(kind);
      const random = prng(seed);
      const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
      const base = Array.from(
        { length: 6 },
        (_, i) => randomBytes(2000 + 3000 * i, seed * 100 + i),
      );
      const believed = new Map<string, Pushed>();
      const deadline = Date.now() + SECONDS * 1000;
      const stats = { pushed: 0, retried: 0, deleted: 0, pulled: 0 };
      let counter = 0;

      async function pusher(): Promise<void> {
        while (Date.now() < deadline) {
          const n = ++counter;
          const repository = pick(REPOSITORIES);
          const tag = `t${n}`;
          const count = random() < 0.25 ? 2 : 1; // sometimes an index over two images
          const images = Array.from({ length: count }, (_, i) => {
            const layers = [...new Set([pick(base), pick(base)])];
            layers.push(
              randomBytes(500 + Math.floor(random() * 5000), seed * 100_000 + n * 10 + i),
            );
            return buildImage(layers, seed * 100_000 + n * 10 + i);
          });
          const chunked = random() < 0.3;
          let result: "ok" | "retry" = "retry";
          while (result === "retry" && Date.now() < deadline + 5_000) {
            result = await pushOnce(t.client, repository, tag, images, chunked);
            // With no grace, GC may take a layer between its upload and the manifest: the
            // manifest PUT says MANIFEST_BLOB_UNKNOWN and the client pushes again.
            if (result === "retry") stats.retried++;
          }
          if (result === "retry") continue;
          const index = count > 1
            ? jsonBytes(imageIndex(images.map((image) => image.descriptor)))
            : undefined;
          believed.set(`${repository}:${tag}`, { repository, tag, images, index });
          stats.pushed++;
        }
      }

      async function deleter(): Promise<void> {
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 5 + random() * 30));
          if (believed.size < 4) continue;
          const [key, pushed] = believed.entries().next().value!; // the oldest
          believed.delete(key);
          const byDigest = !pushed.index && random() < 0.5;
          const reference = byDigest ? pushed.images[0].digest : pushed.tag;
          const res = await t.client.request(
            "DELETE",
            `/v2/${pushed.repository}/manifests/${reference}`,
          );
          assertEquals(res.status, 202, `delete ${key}: ${res.text}`);
          stats.deleted++;
        }
      }

      async function puller(): Promise<void> {
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
          const entries = [...believed.values()];
          if (entries.length === 0) continue;
          const pushed = pick(entries);
          try {
            await pullPushed(t.client, pushed);
            stats.pulled++;
          } catch (error) {
            // Only a tag deleted meanwhile may vanish under a pull.
            if (believed.get(`${pushed.repository}:${pushed.tag}`) === pushed) throw error;
          }
        }
      }

      const reports: GcReport[] = [];
      async function collector(): Promise<void> {
        while (Date.now() < deadline) {
          reports.push(
            await runGc(t.server.store.state, { grace: 0, untagged: true, uploadTtl: 3_600_000 }),
          );
          // Back to back, but yielding (the memory driver never waits on I/O), and now and
          // then a pause so that some pushes complete between passes.
          await new Promise((r) => setTimeout(r, random() < 0.5 ? 0 : random() * 250));
        }
      }

      await Promise.all([
        ...Array.from({ length: PUSHERS }, pusher),
        deleter(),
        puller(),
        collector(),
      ]);

      const swept = reports.reduce((n, r) => n + r.swept.blobs, 0);
      console.log(
        `${kind} seed ${seed}: ${stats.pushed} pushes (${stats.retried} retried), ` +
          `${stats.deleted} deletes, ${stats.pulled} pulls, ${reports.length} gc passes ` +
          `sweeping ${swept} blobs, ${believed.size} tags left`,
      );
      assert(stats.pushed >= 5 && reports.length >= 3, JSON.stringify(stats));
      assert(swept > 0, "gc swept something");
      for (const pushed of believed.values()) await pullPushed(t.client, pushed);
      // One more pass with nothing running: marking alone must keep every tag whole.
      await runGc(t.server.store.state, { grace: 0, untagged: true });
      for (const pushed of believed.values()) await pullPushed(t.client, pushed);
      assertEquals((await runFsck(t.server.store.state)).problems, []);
    });
  }
}

/** One attempt: blobs (skipping those HEAD finds, as docker does), manifests, the tag. */
async function pushOnce(
  client: RegistryClient,
  repository: string,
  tag: string,
  images: LayeredImage[],
  chunked: boolean,
): Promise<"ok" | "retry"> {
  for (const image of images) {
    for (const blob of [image.config, ...image.layers]) {
      const head = await client.head(`/v2/${repository}/blobs/${digest(blob)}`);
      if (head.status === 200) continue;
      const res = chunked
        ? await client.pushBlobChunked(repository, blob, 4096)
        : await client.pushBlob(repository, blob);
      assertEquals(res.status, 201, `push blob: ${res.text}`);
    }
  }
  const put = async (reference: string, body: Bytes, type: string) => {
    const res = await client.pushManifest(repository, reference, body, type);
    if (res.status === 400 && res.text.includes("MANIFEST_BLOB_UNKNOWN")) return false;
    assertEquals(res.status, 201, `push manifest: ${res.text}`);
    return true;
  };
  if (images.length === 1) {
    return await put(tag, images[0].manifest, OCI_MANIFEST) ? "ok" : "retry";
  }
  for (const image of images) {
    if (!await put(image.digest, image.manifest, OCI_MANIFEST)) return "retry";
  }
  const index = jsonBytes(imageIndex(images.map((image) => image.descriptor)));
  return await put(tag, index, OCI_INDEX) ? "ok" : "retry";
}

async function pullPushed(client: RegistryClient, pushed: Pushed): Promise<void> {
  if (pushed.index) {
    const res = await client.get(`/v2/${pushed.repository}/manifests/${pushed.tag}`, {
      accept: OCI_INDEX,
    });
    assertEquals(res.status, 200, `pull ${pushed.repository}:${pushed.tag}: ${res.text}`);
    assertEquals(res.body, pushed.index, "index bytes");
    for (const image of pushed.images) {
      await pullImage(client, pushed.repository, image.digest, image);
    }
    return;
  }
  await pullImage(client, pushed.repository, pushed.tag, pushed.images[0]);
}
