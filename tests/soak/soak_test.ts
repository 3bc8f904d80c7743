// Soak: a registry subprocess (fs storage, online GC every few seconds, a short upload TTL) under
// mixed load for SOAK_SECONDS — pushes (monolithic and chunked), pulls, deletes, abandoned uploads
// — while its RSS (/proc/<pid>/status), open fds (/proc/<pid>/fd) and the data dir's size are
// sampled. When the load stops, what is left is deleted and GC and the upload TTL run; RSS, fds and
// disk must come back near their baseline (taken after a warm-up of the same load, once what it
// left is reclaimed), no request may have failed, and an image pushed before the load must be
// intact. Not in `deno task test`: `deno task test:soak`.
// SOAK_SECONDS (default 300), SOAK_WORKERS (4), SOAK_SETTLE_SECONDS (180), SOAK_SEED (1).

import {
  assert,
  digest,
  procStatusBytes,
  pushImage,
  registryClient,
  spawnRegistry,
  tempDir,
} from "../helpers.ts";
import { prng, pullImage } from "../maintenance/gc_helpers.ts";

const SECONDS = Number(Deno.env.get("SOAK_SECONDS") ?? "300");
const WORKERS = Number(Deno.env.get("SOAK_WORKERS") ?? "4");
const SETTLE_SECONDS = Number(Deno.env.get("SOAK_SETTLE_SECONDS") ?? "180");
const SEED = Number(Deno.env.get("SOAK_SEED") ?? "1");
const SAMPLE_MS = 5_000;
// Grace well above the slowest push here (a blob's commit to its manifest's PUT): with less, GC may
// rightly sweep a pushed layer first and the push gets MANIFEST_BLOB_UNKNOWN (README: GC, rule 1).
const GC = { interval: "3s", grace: "30s", uploadTtl: "15s" };
const MiB = 1024 * 1024;

/** How far above its baseline each figure may stay once the load is over and GC has run. */
const SLACK = {
  rss: 48 * MiB, // V8 keeps some of the heap it grew; a leak of per-upload state grows past this
  fds: 8,
  disk: 1 * MiB, // empty repository directories and catalog entries stay
};

interface Sample {
  t: number;
  phase: "start" | "warm-up" | "baseline" | "load" | "settle";
  rss: number;
  fds: number;
  disk: number;
}

/** Bytes of every file under `dir` (apparent sizes). */
async function diskUse(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    try {
      if (entry.isDirectory) total += await diskUse(path);
      else if (entry.isFile) total += (await Deno.stat(path)).size;
    } catch {
      // removed while walking (GC)
    }
  }
  return total;
}

function fdCount(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** `size` random bytes (crypto in 64 KiB slices). */
function randomData(size: number): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  return data;
}

interface Pushed {
  repo: string;
  tag: string;
  manifest: Uint8Array<ArrayBuffer>;
  blobs: Uint8Array<ArrayBuffer>[];
}

Deno.test({
  name:
    `soak: ${SECONDS} s of pushes, pulls, deletes, GC and abandoned uploads; RSS, fds and disk return near baseline`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("registry-soak-");
    const dataDir = `${dir.path}/data`;
    await using server = await spawnRegistry([
      "--data-dir",
      dataDir,
      "--gc-interval",
      GC.interval,
      "--gc-grace",
      GC.grace,
      "--upload-ttl",
      GC.uploadTtl,
    ]);
    const client = registryClient(server.url);
    const random = prng(SEED);
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
    const samples: Sample[] = [];
    const t0 = performance.now();
    const sample = async (phase: Sample["phase"]) => {
      const s = {
        t: Math.round((performance.now() - t0) / 1000),
        phase,
        rss: procStatusBytes(server.pid, "VmRSS"),
        fds: fdCount(server.pid),
        disk: await diskUse(dataDir),
      };
      samples.push(s);
      return s;
    };
    const counts = { push: 0, pull: 0, delete: 0, abandon: 0, bytesPushed: 0 };
    const errors: string[] = [];
    const expect = (what: string, status: number, ok: number[], text = "") => {
      if (!ok.includes(status)) errors.push(`${what}: ${status} ${text.slice(0, 200)}`);
      return ok.includes(status);
    };

    // An image that lives through the whole soak, and one warm-up of every operation.
    const keep = await pushImage(client, "soak/keep", "v1", { layerCount: 2, layerSize: 50_000 });
    const alive: Pushed[] = [];
    let serial = 0;
    const push = async () => {
      const repo = `soak/r${Math.floor(random() * 12)}`;
      const tag = `t${serial++}`;
      const blobs = Array.from(
        { length: 1 + Math.floor(random() * 3) },
        () => randomData(1024 + Math.floor(random() ** 2 * 2 * MiB)),
      );
      const config = randomData(200);
      for (const [i, blob] of [config, ...blobs].entries()) {
        const res = i % 2 === 0
          ? await client.pushBlob(repo, blob)
          : await client.pushBlobChunked(repo, blob, Math.max(1, Math.ceil(blob.length / 3)));
        if (!expect(`push blob to ${repo}`, res.status, [201], res.text)) return;
        counts.bytesPushed += blob.length;
      }
      const manifest = new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: digest(config),
          size: config.length,
        },
        layers: blobs.map((b) => ({
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: digest(b),
          size: b.length,
        })),
      }));
      const res = await client.pushManifest(repo, tag, manifest);
      if (!expect(`push manifest ${repo}:${tag}`, res.status, [201], res.text)) return;
      alive.push({ repo, tag, manifest, blobs: [config, ...blobs] });
      counts.push++;
    };
    const pull = async () => {
      if (alive.length === 0) return;
      const image = pick(alive);
      const res = await client.get(`/v2/${image.repo}/manifests/${image.tag}`, {
        accept: "application/vnd.oci.image.manifest.v1+json",
      });
      if (!alive.includes(image)) return; // deleted meanwhile by another worker
      if (!expect(`pull ${image.repo}:${image.tag}`, res.status, [200], res.text)) return;
      if (digest(res.body) !== digest(image.manifest)) {
        errors.push(`manifest of ${image.tag} differs`);
      }
      for (const blob of image.blobs) {
        const got = await client.get(`/v2/${image.repo}/blobs/${digest(blob)}`);
        if (!alive.includes(image)) return;
        if (!expect(`pull blob of ${image.tag}`, got.status, [200], got.text)) return;
        if (digest(got.body) !== digest(blob)) errors.push(`blob of ${image.tag} differs`);
      }
      counts.pull++;
    };
    const remove = async (image = alive.length ? pick(alive) : undefined) => {
      if (!image) return;
      alive.splice(alive.indexOf(image), 1); // pullers skip it from now on
      const res = await client.request(
        "DELETE",
        `/v2/${image.repo}/manifests/${digest(image.manifest)}`,
      );
      if (expect(`delete ${image.repo}@${image.tag}`, res.status, [202], res.text)) counts.delete++;
    };
    const abandon = async () => {
      const repo = `soak/r${Math.floor(random() * 12)}`;
      const location = await client.startUpload(repo);
      const how = random();
      if (how < 0.7) {
        const chunk = randomData(1 + Math.floor(random() * 256 * 1024));
        const res = await client.request("PATCH", location, {
          body: chunk,
          headers: { "content-type": "application/octet-stream" },
        });
        if (!expect(`patch abandoned upload`, res.status, [202], res.text)) return;
      }
      if (how > 0.9) {
        const res = await client.request("DELETE", location);
        expect("cancel upload", res.status, [204, 404], res.text);
      }
      counts.abandon++;
    };
    const ops: [number, () => Promise<void>][] = [
      [0.35, push],
      [0.3, pull],
      [0.15, () => remove()],
      [0.2, abandon],
    ];

    /** Mixed load by WORKERS workers for `seconds`, sampled every SAMPLE_MS. */
    const load = async (seconds: number, phase: "warm-up" | "load") => {
      let running = true;
      const sampler = (async () => {
        while (running) {
          await new Promise((r) => setTimeout(r, SAMPLE_MS));
          if (running) await sample(phase);
        }
      })();
      const deadline = performance.now() + seconds * 1000;
      await Promise.all(Array.from({ length: WORKERS }, async () => {
        while (performance.now() < deadline && errors.length < 20) {
          let r = random();
          const op = ops.find(([w]) => (r -= w) < 0)?.[1] ?? pull;
          try {
            await op();
          } catch (error) {
            errors.push(`${(error as Error).message}`.slice(0, 300));
          }
        }
      }));
      running = false;
      await sampler;
    };
    const near = (s: Sample, base: Sample) =>
      s.rss <= base.rss + SLACK.rss && s.fds <= base.fds + SLACK.fds &&
      s.disk <= base.disk + SLACK.disk;
    /** Deletes what the load left, then samples until `done` or SETTLE_SECONDS have passed. */
    const settle = async (done: (s: Sample) => boolean) => {
      while (alive.length) await remove(alive[0]);
      const started = performance.now();
      let last = await sample("settle");
      while (!done(last) && performance.now() - started < SETTLE_SECONDS * 1000) {
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
        last = await sample("settle");
      }
      return { last, seconds: Math.round((performance.now() - started) / 1000) };
    };

    // Warm-up: the same load for a while (JIT, heap and caches grow to their working size), then
    // everything it left is reclaimed; the baseline is taken there.
    const start = await sample("start");
    await load(Math.min(30, Math.max(5, SECONDS / 10)), "warm-up");
    await settle((s) => s.disk <= start.disk + SLACK.disk);
    const baseline = await sample("baseline");

    await load(SECONDS, "load");
    const during = samples.filter((s) => s.phase === "load");
    const peak = {
      rss: Math.max(...during.map((s) => s.rss)),
      fds: Math.max(...during.map((s) => s.fds)),
      disk: Math.max(...during.map((s) => s.disk)),
    };

    // Load over: delete what is left, let GC and the upload TTL reclaim the rest.
    const { last, seconds: settled } = await settle((s) => near(s, baseline));
    await pullImage(client, "soak/keep", "v1", keep);

    const mib = (n: number) => (n / MiB).toFixed(1);
    console.log(
      `soak: ${SECONDS} s, ${WORKERS} workers: ${counts.push} pushes ` +
        `(${mib(counts.bytesPushed)} MiB), ${counts.pull} pulls, ${counts.delete} deletes, ` +
        `${counts.abandon} abandoned uploads, ${errors.length} errors\n` +
        `         RSS MiB   fds   disk MiB\n` +
        `baseline ${mib(baseline.rss).padStart(7)} ${String(baseline.fds).padStart(5)} ${
          mib(baseline.disk).padStart(10)
        }\n` +
        `peak     ${mib(peak.rss).padStart(7)} ${String(peak.fds).padStart(5)} ${
          mib(peak.disk).padStart(10)
        }\n` +
        `after    ${mib(last.rss).padStart(7)} ${String(last.fds).padStart(5)} ${
          mib(last.disk).padStart(10)
        }` +
        `  (${settled} s after the load, slack ${mib(SLACK.rss)} MiB, ${SLACK.fds} fds, ${
          mib(SLACK.disk)
        } MiB)\n` +
        `samples (t s/phase/RSS MiB/fds/disk MiB): ` +
        samples.map((s) => `${s.t}/${s.phase}/${mib(s.rss)}/${s.fds}/${mib(s.disk)}`).join(" "),
    );
    assert(
      errors.length === 0,
      `${errors.length} failed operation(s):\n${errors.slice(0, 20).join("\n")}`,
    );
    assert(
      counts.push > 0 && counts.pull > 0 && counts.delete > 0 && counts.abandon > 0,
      "every operation ran",
    );
    assert(
      last.fds <= baseline.fds + SLACK.fds,
      `open fds ${last.fds} after the load, baseline ${baseline.fds}`,
    );
    assert(
      last.disk <= baseline.disk + SLACK.disk,
      `data dir ${mib(last.disk)} MiB ${settled} s after the load, baseline ${
        mib(baseline.disk)
      } MiB`,
    );
    assert(
      last.rss <= baseline.rss + SLACK.rss,
      `RSS ${mib(last.rss)} MiB ${settled} s after the load, baseline ${mib(baseline.rss)} MiB`,
    );
  },
});
