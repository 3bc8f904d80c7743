// Simple Registry vs. CNCF distribution, side by side (issue 4).
//
//   deno run -A bench/main.ts [--quick] [--only mono,chunked,manifest,
//     concurrent,rss,metrics,mirror,ceilings,auth,ui,retention,stall,scale]
//     [--out bench/results.json] [--runs N] [--hey-duration S] [--no-dist] [--no-sr]
//     [--sr-main PATH] [--keep] [--auth-base PATH] [--base-main PATH]
//
// --base-main runs a second Simple Registry (another checkout's main.ts, e.g. main's) in
// distribution's column, to compare a change with its base side by side, run for run.
// Every figure is the median over --runs timed runs after one warm-up run.
// MB = 10^6 bytes. The client writes request bodies from one reused buffer
// over raw sockets (bench/http.ts); its ceiling is measured against trivial
// sinks (bench/sink.ts) in the "ceilings" section.

import { parseArgs } from "node:util";
import { type FloodResult, measureFlood, quantile, writeFloodHtpasswd } from "./auth.ts";
import { type HeyResult, runHey } from "./hey.ts";
import { benchRetention, type RetentionFigures } from "./retention.ts";
import { HttpConn } from "./http.ts";
import { benchMirror, type MirrorFigure, mirrorTable } from "./mirror.ts";
import { benchUi, type UiFigure, uiTable } from "./ui.ts";
import { benchStall, type StallRound } from "./stall.ts";
import { benchScale, type ScaleRound, type ScaleServer } from "./scale.ts";
import {
  type Blob,
  blob,
  CONFIG_JSON,
  deleteBlob,
  makePattern,
  manifestFor,
  MiB,
  pullBlob,
  pushBytes,
  pushChunked,
  pushMonolithic,
  pushSmallImage,
  putManifest,
} from "./oci.ts";
import {
  type CpuSnapshot,
  cpuSnapshot,
  type CpuUsage,
  cpuUsage,
  currentRss,
  peakRss,
  resetPeakRss,
} from "./proc.ts";
import {
  distInstalled,
  HOST,
  type Server,
  startDistribution,
  startSimpleRegistry,
  startSink,
  writeRepeated,
} from "./servers.ts";

const GiB = 1 << 30;
const MB = 1e6;

// ---------------------------------------------------------------- options

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    runs: { type: "string" },
    "hey-duration": { type: "string" },
    "no-dist": { type: "boolean", default: false },
    "no-sr": { type: "boolean", default: false },
    "sr-main": { type: "string" },
    "auth-base": { type: "string" },
    "base-main": { type: "string" },
    "dist-no-cache": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "quiet-wait": { type: "string" },
    "quiet-cores": { type: "string" },
    help: { type: "boolean", default: false },
  },
});

const SECTIONS = [
  "mono",
  "chunked",
  "manifest",
  "concurrent",
  "rss",
  "metrics",
  "mirror",
  "ceilings",
  "auth",
  "ui",
  "retention",
  "stall",
  "scale",
] as const;
type Section = typeof SECTIONS[number];

if (opt.help) {
  console.log(
    `usage: deno run -A bench/main.ts [--quick] [--only ${
      SECTIONS.join(",")
    }]\n  [--out FILE] [--runs N] [--hey-duration SECONDS] [--no-dist] [--no-sr]\n  [--sr-main PATH] [--dist-no-cache] [--keep]\n` +
      `  [--auth-base PATH]  the auth section also runs this main.ts (e.g. main's), for before/after\n` +
      `  [--base-main PATH]  a second Simple Registry in distribution's column\n` +
      `env BENCH_SR_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" adds deno flags for the registry`,
  );
  Deno.exit(0);
}

const quick = opt.quick;
const only = new Set<Section>();
for (const s of (opt.only ?? "").split(",").map((x) => x.trim())) {
  if (!s) continue;
  if (!SECTIONS.includes(s as Section)) {
    console.error(`unknown section ${s}; sections: ${SECTIONS.join(", ")}`);
    Deno.exit(2);
  }
  only.add(s as Section);
}
const want = (s: Section) => only.size === 0 || only.has(s);
const RUNS = Math.max(1, Number(opt.runs ?? (quick ? 2 : 5)));
const HEY_SECONDS = Number(opt["hey-duration"] ?? (quick ? 1 : 5));
const MONO_SIZES = quick ? [MiB, 64 * MiB] : [MiB, 64 * MiB, GiB];
const CHUNKED_SIZE = 256 * MiB;
const CHUNK = 8 * MiB;
const CONC_CLIENTS = 16;
const CONC_SIZE = 4 * MiB;
const SINK_SIZE = quick ? 256 * MiB : GiB;
/** Small blobs are pushed/pulled in batches of this many bytes per run. */
const BATCH_BYTES = 64 * MiB;
/** Before each timed run, wait up to this many seconds for other processes to go quiet. */
const QUIET_WAIT = Number(opt["quiet-wait"] ?? (quick ? 2 : 10));
const QUIET_CORES = Number(opt["quiet-cores"] ?? 0.3);
/** Total budget for such waits, seconds. */
const QUIET_BUDGET = quick ? 30 : 600;
const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const srMain = opt["sr-main"] ?? `${repoRoot}/main.ts`;
const outPath = opt.out ?? `${repoRoot}/bench/results.json`;

// ---------------------------------------------------------------- results

interface Stat {
  median: number;
  runs: number[];
  min: number;
  max: number;
}

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length === 0
    ? NaN
    : s.length % 2
    ? s[(s.length - 1) / 2]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: m, runs: xs, min: s[0], max: s[s.length - 1] };
}

interface Figure {
  id: string;
  label: string;
  unit: string;
  better: "higher" | "lower";
  /** target text and check (ratio SR/dist or absolute SR value) */
  target?: string;
  check?: (sr: number, dist: number | undefined) => boolean;
  values: Record<string, Stat>;
  cpu: Record<string, CpuUsage>;
  errors: Record<string, string>;
  notes: Record<string, unknown>;
}

const figures: Figure[] = [];
let uiFigures: UiFigure[] = [];
/** The mirror section's figures (bench/mirror.ts): the mirror against its own baselines. */
let mirrorFigures: MirrorFigure[] = [];
const figById = new Map<string, Figure>();

function figure(
  id: string,
  label: string,
  unit: string,
  better: "higher" | "lower",
  target?: string,
  check?: Figure["check"],
): Figure {
  let f = figById.get(id);
  if (!f) {
    f = {
      id,
      label,
      unit,
      better,
      target,
      check,
      values: {},
      cpu: {},
      errors: {},
      notes: {},
    };
    figById.set(id, f);
    figures.push(f);
  }
  return f;
}

const ratioAtLeast = (k: number) => (sr: number, d: number | undefined) =>
  d !== undefined && sr / d >= k;
const atMost = (k: number) => (sr: number) => sr <= k;

interface SectionCpu {
  section: string;
  server: string;
  usage: CpuUsage;
}
const sectionCpu: SectionCpu[] = [];
const ceilings: Record<string, Stat | number | string> = {};

/**
 * The ceiling (from the ceilings section) that bounds a figure's work on this machine, where the
 * same work measured without the registry is what limits it: a figure id → ceiling key, label.
 */
const CEILING_OF: Record<string, [RegExp, string]> = {
  push_1MiB: [/^durable_sink_push_1MiBx64_MBps$/, "durable sink"],
  push_1GiB: [/^fs_fdatasync_1GiB_x4_in_a_row_MBps$/, "disk, sustained"],
  push_chunked_256MiB: [/^fs_fdatasync_1GiB_x4_in_a_row_MBps$/, "disk, sustained"],
  pull_1GiB: [/^deno_serve_sink_pull_file_\w+_MBps$/, "Deno.serve, file"],
  concurrent_16x4MiB: [/^durable_sink_concurrent_16x4MiB_MBps$/, "durable sink"],
};

function ceilingOf(f: Figure): string {
  const [pattern, label] = CEILING_OF[f.id] ?? [];
  const key = pattern && Object.keys(ceilings).find((k) => pattern.test(k));
  const value = key ? ceilings[key] : undefined;
  const median = typeof value === "object" ? value.median : value;
  return typeof median === "number" ? `${fmt(median, f.unit)} (${label})` : "";
}
const log = (s: string) => console.error(`[bench] ${s}`);

const quiet = { waits: 0, waitedSeconds: 0, gaveUp: 0 };

/**
 * Waits (bounded) until processes that are not ours use less than
 * QUIET_CORES, sampling 250 ms windows: the machine is shared.
 */
async function waitQuiet(): Promise<void> {
  if (QUIET_WAIT <= 0 || quiet.waitedSeconds >= QUIET_BUDGET) return;
  const t0 = performance.now();
  const until = t0 + QUIET_WAIT * 1000;
  let ok = false;
  for (let i = 0; i < 1000 && performance.now() < until; i++) {
    const a = cpuSnapshot({});
    await new Promise((r) => setTimeout(r, 250));
    if (cpuUsage(a, cpuSnapshot({})).othersCores < QUIET_CORES) {
      ok = true;
      break;
    }
  }
  quiet.waits++;
  quiet.waitedSeconds += (performance.now() - t0) / 1000;
  if (!ok) quiet.gaveUp++;
}

/** Accumulates CPU usage over several timed intervals. */
class CpuAcc {
  #pids: Record<string, number>;
  #a: CpuSnapshot | null = null;
  #sum: CpuUsage | null = null;
  constructor(pids: Record<string, number>) {
    this.#pids = pids;
  }
  async start(): Promise<void> {
    await waitQuiet();
    this.#a = cpuSnapshot(this.#pids);
  }
  stop(): void {
    if (!this.#a) return;
    const u = cpuUsage(this.#a, cpuSnapshot(this.#pids));
    this.#a = null;
    if (!this.#sum) {
      this.#sum = u;
      return;
    }
    // Combine as time-weighted averages.
    const s = this.#sum;
    const t = s.seconds + u.seconds;
    const w = (x: number, y: number) => (x * s.seconds + y * u.seconds) / t;
    const servers: Record<string, number> = {};
    for (const k of Object.keys(u.servers)) {
      servers[k] = w(s.servers[k] ?? 0, u.servers[k]);
    }
    this.#sum = {
      seconds: t,
      othersCores: w(s.othersCores, u.othersCores),
      kernelCores: w(s.kernelCores, u.kernelCores),
      stealCores: w(s.stealCores, u.stealCores),
      machineCores: w(s.machineCores, u.machineCores),
      oursCores: w(s.oursCores, u.oursCores),
      servers,
    };
  }
  get usage(): CpuUsage | null {
    return this.#sum;
  }
}

// ---------------------------------------------------------------- sections

const pattern = makePattern();
const pullBuf = new Uint8Array(8 * MiB);

function sizeLabel(n: number): string {
  return n >= GiB ? `${n / GiB} GiB` : `${n / MiB} MiB`;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** `durable`: a sink whose 1 MiB pushes (the ceiling) run between the server's, in its disk state. */
async function sectionMono(s: Server, rssOnly: boolean, durable?: Server): Promise<void> {
  const sizes = rssOnly ? MONO_SIZES.filter((x) => x >= GiB) : MONO_SIZES;
  if (sizes.length === 0) {
    log("rss: no 1 GiB size in --quick mode; using 64 MiB");
    sizes.push(64 * MiB);
  }
  const c = new HttpConn(HOST, s.port);
  try {
    for (const size of sizes) {
      const L = sizeLabel(size);
      const repo = `bench/mono-${size}`;
      const batch = Math.max(1, Math.floor(BATCH_BYTES / size));
      const tag = `mono-${size}`;
      const blobsOf = (run: number) =>
        Array.from({ length: batch }, (_, k) => blob(pattern, tag, run * batch + k, size));
      log(`${s.key}: push ${L} x${batch} per run, ${RUNS} runs + warm-up`);
      // warm-up (blob kept for the pulls)
      const warm = blobsOf(0);
      for (const b of warm) await pushMonolithic(c, repo, b);
      const push = figure(
        `push_${L.replace(" ", "")}`,
        `push ${L} monolithic`,
        "MB/s",
        "higher",
        size === GiB || size === MiB ? "≥ 4× dist" : undefined,
        size === GiB || size === MiB ? ratioAtLeast(4) : undefined,
      );
      const rssFig = figure(
        `rss_push_${L.replace(" ", "")}`,
        `peak RSS, push ${L}`,
        "MiB",
        "lower",
        size === GiB ? "≤ 100 MiB" : undefined,
        size === GiB ? atMost(100) : undefined,
      );
      const acc = new CpuAcc({ [s.key]: s.pid });
      const rates: number[] = [];
      const rss: number[] = [];
      const ceiling = size === MiB && !rssOnly ? durable : undefined;
      const ceilingRates: number[] = [];
      if (ceiling) await durableBatch(ceiling.port, 0); // its warm-up
      try {
        for (let r = 1; r <= RUNS; r++) {
          const bl = blobsOf(r); // digests computed here, outside the timing
          resetPeakRss(s.pid);
          await acc.start();
          const secs = await timed(async () => {
            for (const b of bl) await pushMonolithic(c, repo, b);
          });
          acc.stop();
          rss.push(peakRss(s.pid) / MiB);
          rates.push(size * batch / MB / secs);
          if (ceiling) {
            ceilingRates.push(DURABLE_BATCH * MiB / MB / await durableBatch(ceiling.port, r));
          }
          if (size >= 64 * MiB) {
            for (const b of bl) await deleteBlob(c, repo, b.digest);
          }
        }
        push.values[s.key] = stat(rates);
        rssFig.values[s.key] = stat(rss);
        if (ceiling) ceilings[DURABLE_1MIB] = stat(ceilingRates);
        if (acc.usage) push.cpu[s.key] = acc.usage;
      } catch (e) {
        push.errors[s.key] = String(e);
        log(`${s.key}: push ${L} failed: ${e}`);
        continue;
      }
      if (rssOnly) {
        if (size >= 64 * MiB) {
          for (const b of warm) await deleteBlob(c, repo, b.digest).catch(() => 0);
        }
        continue;
      }

      // pulls of the warm-up blobs
      const pull = figure(
        `pull_${L.replace(" ", "")}`,
        `pull ${L}`,
        "MB/s",
        "higher",
        size === GiB ? "≥ 1× dist" : undefined,
        size === GiB ? ratioAtLeast(1) : undefined,
      );
      try {
        for (const b of warm) {
          const n = await pullBlob(c, repo, b.digest, pullBuf, true);
          if (n !== size) throw new Error(`pulled ${n} bytes, want ${size}`);
        }
        const pacc = new CpuAcc({ [s.key]: s.pid });
        const prates: number[] = [];
        for (let r = 1; r <= RUNS; r++) {
          let got = 0;
          await pacc.start();
          const secs = await timed(async () => {
            for (const b of warm) got += await pullBlob(c, repo, b.digest, pullBuf);
          });
          pacc.stop();
          if (got !== size * batch) throw new Error(`pulled ${got} bytes`);
          prates.push(got / MB / secs);
        }
        pull.values[s.key] = stat(prates);
        if (pacc.usage) pull.cpu[s.key] = pacc.usage;
      } catch (e) {
        pull.errors[s.key] = String(e);
        log(`${s.key}: pull ${L} failed: ${e}`);
      }
      if (size >= 64 * MiB) {
        for (const b of warm) await deleteBlob(c, repo, b.digest).catch(() => 0);
      }
    }
  } finally {
    c.close();
  }
}

async function sectionChunked(s: Server): Promise<void> {
  const L = sizeLabel(CHUNKED_SIZE);
  const f = figure(
    "push_chunked_256MiB",
    `chunked push ${L} (${CHUNK / MiB} MiB PATCHes)`,
    "MB/s",
    "higher",
    "≥ 4× dist",
    ratioAtLeast(4),
  );
  const c = new HttpConn(HOST, s.port);
  const repo = "bench/chunked";
  try {
    log(`${s.key}: chunked push ${L}, ${RUNS} runs + warm-up`);
    const acc = new CpuAcc({ [s.key]: s.pid });
    const rates: number[] = [];
    for (let r = 0; r <= RUNS; r++) {
      const b = blob(pattern, "chunked", r, CHUNKED_SIZE);
      if (r > 0) await acc.start();
      const secs = await timed(() => pushChunked(c, repo, b, CHUNK));
      if (r > 0) {
        acc.stop();
        rates.push(CHUNKED_SIZE / MB / secs);
      }
      await deleteBlob(c, repo, b.digest).catch(() => 0);
    }
    f.values[s.key] = stat(rates);
    if (acc.usage) f.cpu[s.key] = acc.usage;
  } catch (e) {
    f.errors[s.key] = String(e);
    log(`${s.key}: chunked failed: ${e}`);
  } finally {
    c.close();
  }
}

async function sectionManifest(s: Server): Promise<void> {
  const repo = "bench/manifest";
  const c = new HttpConn(HOST, s.port);
  try {
    await pushSmallImage(c, repo, "latest", pattern);
  } catch (e) {
    for (const conc of [1, 16, 64]) {
      for (const method of ["HEAD", "GET"]) {
        figure(`${method.toLowerCase()}_c${conc}_rps`, "", "", "higher")
          .errors[s.key] = String(e);
      }
    }
    log(`${s.key}: manifest setup failed: ${e}`);
    return;
  } finally {
    c.close();
  }
  const url = `http://${HOST}:${s.port}/v2/${repo}/manifests/latest`;
  for (const conc of [1, 16, 64]) {
    for (const method of ["HEAD", "GET"]) {
      const k = conc === 1 ? 3 : conc === 64 ? 4 : undefined;
      const rps = figure(
        `${method.toLowerCase()}_c${conc}_rps`,
        `manifest ${method} c=${conc}`,
        "req/s",
        "higher",
        k ? `≥ ${k}× dist` : undefined,
        k ? ratioAtLeast(k) : undefined,
      );
      const p50 = figure(
        `${method.toLowerCase()}_c${conc}_p50`,
        `manifest ${method} c=${conc} p50`,
        "ms",
        "lower",
      );
      const p99 = figure(
        `${method.toLowerCase()}_c${conc}_p99`,
        `manifest ${method} c=${conc} p99`,
        "ms",
        "lower",
        conc === 64 ? "≤ 30 ms" : undefined,
        conc === 64 ? atMost(30) : undefined,
      );
      log(`${s.key}: hey ${method} c=${conc} ${HEY_SECONDS}s x${RUNS} + warm-up`);
      try {
        await runHey(url, method, conc, 1);
        const acc = new CpuAcc({ [s.key]: s.pid });
        const rs: HeyResult[] = [];
        for (let r = 0; r < RUNS; r++) {
          await acc.start();
          rs.push(await runHey(url, method, conc, HEY_SECONDS));
          acc.stop();
        }
        rps.values[s.key] = stat(rs.map((x) => x.rps));
        p50.values[s.key] = stat(rs.map((x) => x.p50));
        p99.values[s.key] = stat(rs.map((x) => x.p99));
        if (acc.usage) rps.cpu[s.key] = acc.usage;
        const bad = rs.reduce((a, x) => a + x.other + x.errors, 0);
        rps.notes[s.key] = {
          non200: rs.reduce((a, x) => a + x.other, 0),
          errors: rs.reduce((a, x) => a + x.errors, 0),
        };
        if (bad > 0) {
          rps.errors[s.key] = `${bad} non-200 responses or errors`;
        }
      } catch (e) {
        rps.errors[s.key] = String(e);
        log(`${s.key}: hey failed: ${e}`);
      }
    }
  }
}

/**
 * The cost of metrics (issue 15, target ≤ 5%): manifest HEAD by tag against two Simple Registry
 * processes, one with metrics (the default) and one with --no-metrics, runs alternating between
 * them (and which goes first), so both see the same machine. On: the SR column; off: dist's.
 */
async function sectionMetrics(root: string): Promise<void> {
  const on = await startSimpleRegistry(srMain, root, opt.keep, [], "sr");
  const off = await startSimpleRegistry(srMain, root, opt.keep, ["--no-metrics"], "dist");
  try {
    const repo = "bench/metrics";
    for (const s of [on, off]) {
      const c = new HttpConn(HOST, s.port);
      try {
        await pushSmallImage(c, repo, "latest", pattern);
      } finally {
        c.close();
      }
    }
    const url = (s: Server) => `http://${HOST}:${s.port}/v2/${repo}/manifests/latest`;
    for (const conc of [1, 64]) {
      const rps = figure(
        `metrics_head_c${conc}_rps`,
        `manifest HEAD c=${conc}: metrics on | off`,
        "req/s",
        "higher",
        "on ≥ 0.95× off",
        ratioAtLeast(0.95),
      );
      const p99 = figure(
        `metrics_head_c${conc}_p99`,
        `manifest HEAD c=${conc} p99: metrics on | off`,
        "ms",
        "lower",
      );
      // The server's own CPU per request: steadier than req/s when other processes take cores.
      const cpu = figure(
        `metrics_head_c${conc}_cpu_us`,
        `manifest HEAD c=${conc} server CPU per request: metrics on | off`,
        "µs",
        "lower",
      );
      log(`metrics on/off: hey HEAD c=${conc} ${HEY_SECONDS}s x${RUNS} each, alternating`);
      const results: Record<string, HeyResult[]> = { sr: [], dist: [] };
      const acc = new CpuAcc({ sr: on.pid, dist: off.pid });
      try {
        for (const s of [on, off]) await runHey(url(s), "HEAD", conc, 1);
        for (let r = 0; r < RUNS; r++) {
          for (const s of r % 2 ? [off, on] : [on, off]) {
            await acc.start();
            results[s.key].push(await runHey(url(s), "HEAD", conc, HEY_SECONDS));
            acc.stop();
          }
        }
      } catch (e) {
        rps.errors.sr = String(e);
        log(`metrics: hey failed: ${e}`);
        continue;
      }
      for (const key of ["sr", "dist"]) {
        rps.values[key] = stat(results[key].map((x) => x.rps));
        p99.values[key] = stat(results[key].map((x) => x.p99));
        const bad = results[key].reduce((a, x) => a + x.other + x.errors, 0);
        if (bad > 0) rps.errors[key] = `${bad} non-200 responses or errors`;
        if (acc.usage) {
          rps.cpu[key] = acc.usage;
          const served = results[key].reduce((a, x) => a + x.rps * HEY_SECONDS, 0);
          const seconds = acc.usage.servers[key] * acc.usage.seconds;
          cpu.values[key] = stat([seconds / served * 1e6]);
        }
      }
      const ratio = rps.values.sr.median / rps.values.dist.median;
      log(
        `metrics c=${conc}: on ${rps.values.sr.median.toFixed(0)} req/s, off ${
          rps.values.dist.median.toFixed(0)
        } req/s (${((1 - ratio) * 100).toFixed(1)}% slower)`,
      );
    }
  } finally {
    await on.stop();
    await off.stop();
  }
}

/** `durable`: a sink whose runs (the ceiling) alternate with the server's, in its disk state. */
async function sectionConcurrent(s: Server, durable?: Server): Promise<void> {
  const repo = "bench/concurrent";
  const f = figure(
    "concurrent_16x4MiB",
    `${CONC_CLIENTS} concurrent pushes of ${sizeLabel(CONC_SIZE)} + manifest`,
    "MB/s",
    "higher",
    "≥ 3.5× dist",
    ratioAtLeast(3.5),
  );
  const ef = figure(
    "concurrent_errors",
    `${CONC_CLIENTS} concurrent pushes: errors`,
    "count",
    "lower",
    "0",
    (sr) => sr === 0,
  );
  let cfg: string;
  const c0 = new HttpConn(HOST, s.port);
  try {
    cfg = await pushBytes(c0, repo, CONFIG_JSON);
  } catch (e) {
    f.errors[s.key] = String(e);
    return;
  } finally {
    c0.close();
  }
  log(`${s.key}: ${CONC_CLIENTS} concurrent pushes, ${RUNS} runs + warm-up`);
  const acc = new CpuAcc({ [s.key]: s.pid });
  const rates: number[] = [];
  const errs: number[] = [];
  const firstErr: string[] = [];
  const ceilingRates: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    if (r > 0) await acc.start();
    const run = await concurrentPushes(s.port, repo, r, cfg);
    if (r > 0) {
      acc.stop();
      rates.push(CONC_CLIENTS * CONC_SIZE / MB / run.secs);
      errs.push(run.errors.length);
    }
    firstErr.push(...run.errors.slice(0, 3 - firstErr.length));
    if (durable) {
      const secs = await durableConcurrent(durable.port, r);
      if (r > 0) ceilingRates.push(CONC_CLIENTS * CONC_SIZE / MB / secs);
    }
  }
  if (durable) ceilings[DURABLE_CONCURRENT] = stat(ceilingRates);
  f.values[s.key] = stat(rates);
  ef.values[s.key] = stat(errs);
  ef.values[s.key].median = errs.reduce((a, b) => a + b, 0); // total errors
  if (firstErr.length) ef.errors[s.key] = firstErr.join(" | ");
  if (acc.usage) f.cpu[s.key] = acc.usage;
}

/**
 * One run of the concurrent figure: CONC_CLIENTS connections, each pushing a distinct blob
 * (POST + PUT with the body) and a manifest tagged for it. Resolves to the seconds taken and
 * the errors seen.
 */
async function concurrentPushes(
  port: number,
  repo: string,
  run: number,
  cfg: string,
): Promise<{ secs: number; errors: string[] }> {
  const blobs: Blob[] = Array.from(
    { length: CONC_CLIENTS },
    (_, i) => blob(pattern, "concurrent", run * CONC_CLIENTS + i, CONC_SIZE),
  );
  const manifests = blobs.map((b) =>
    manifestFor({ digest: cfg, size: CONFIG_JSON.length }, [
      { digest: b.digest, size: b.length },
    ])
  );
  const errors: string[] = [];
  const secs = await timed(async () => {
    await Promise.all(blobs.map(async (b, i) => {
      const c = new HttpConn(HOST, port);
      try {
        await pushMonolithic(c, repo, b);
        await putManifest(c, repo, `r${run}-c${i}`, manifests[i]);
      } catch (e) {
        errors.push(String(e));
      } finally {
        c.close();
      }
    }));
  });
  return { secs, errors };
}

/** Ceiling keys of the durable sink (bench/sink.ts durablePut: a push's work and nothing else). */
const DURABLE_1MIB = "durable_sink_push_1MiBx64_MBps";
const DURABLE_CONCURRENT = "durable_sink_concurrent_16x4MiB_MBps";
const DURABLE_BATCH = 64;

/** DURABLE_BATCH pushes of distinct 1 MiB blobs to the durable sink; resolves to the seconds. */
async function durableBatch(port: number, run: number): Promise<number> {
  const blobs = Array.from(
    { length: DURABLE_BATCH },
    (_, i) => blob(pattern, "durable", run * DURABLE_BATCH + i, MiB),
  );
  const c = new HttpConn(HOST, port);
  try {
    return await timed(async () => {
      for (const b of blobs) await pushMonolithic(c, "durable", b);
    });
  } finally {
    c.close();
  }
}

/** One concurrent run against the durable sink (its manifests name no real config). */
async function durableConcurrent(port: number, run: number): Promise<number> {
  const { secs, errors } = await concurrentPushes(port, "durable", run, `sha256:${"1".repeat(64)}`);
  if (errors.length) throw new Error(`durable sink: ${errors[0]}`);
  return secs;
}

/**
 * What durability costs on this disk, without HTTP or hashing: the floors under a crash-safe
 * push. (1) 4 GiB written as four 1 GiB files back to back, each flushed: the first runs ride
 * the virtual disk's burst, the last show its sustained rate. (2) one 1 MiB file written,
 * flushed and its directory flushed: the floor of a 1 MiB push. (3) 16 writers at once, each a
 * new 4 MiB file plus three small files, every one flushed with its directory: the floor of the
 * concurrent-push figure.
 */
async function durableWriteCeilings(root: string): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "durable-" });
  const writeFile = (path: string, bytes: number, chunk = pattern) =>
    writeRepeated(path, bytes, chunk, true);
  const syncDir = async (path: string) => {
    using d = await Deno.open(path, { read: true });
    await d.syncData();
  };
  try {
    log("ceilings: durable writes (4 x 1 GiB flushed, 1 MiB flushed, 16 writers)");
    await waitQuiet();
    const gib: number[] = [];
    for (let i = 0; i < 4; i++) {
      gib.push(GiB / MB / await timed(() => writeFile(`${dir}/g${i}`, GiB)));
    }
    for (let i = 0; i < 4; i++) await Deno.remove(`${dir}/g${i}`);
    ceilings["fs_fdatasync_1GiB_x4_in_a_row_MBps"] = stat(gib);

    const small: number[] = [];
    const mib = pattern.subarray(0, MiB);
    for (let i = 0; i < 50; i++) {
      small.push(
        1000 * await timed(async () => {
          await writeFile(`${dir}/m${i}`, MiB, mib);
          await syncDir(dir);
        }),
      );
    }
    ceilings["fs_durable_1MiB_file_plus_dir_ms"] = stat(small);

    const rounds: number[] = [];
    const tiny = pattern.subarray(0, 600);
    for (let r = 0; r < 5; r++) {
      const secs = await timed(async () => {
        await Promise.all(Array.from({ length: 16 }, async (_, w) => {
          const d = `${dir}/c${r}-${w}`;
          await Deno.mkdir(d);
          await writeFile(`${d}/blob`, 4 * MiB, pattern.subarray(0, 4 * MiB));
          await syncDir(d);
          for (let k = 0; k < 3; k++) {
            await writeFile(`${d}/s${k}`, tiny.length, tiny);
            await syncDir(d);
          }
        }));
      });
      rounds.push(16 * 4 * MiB / MB / secs);
    }
    ceilings["fs_durable_16_writers_4MiB_plus_3_small_MBps"] = stat(rounds);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sectionCeilings(root: string): Promise<void> {
  // One-core SHA-256 with openssl.
  log("ceilings: openssl speed -evp sha256");
  try {
    const o = await new Deno.Command("openssl", {
      args: [
        "speed",
        "-evp",
        "sha256",
        "-bytes",
        "16384",
        "-seconds",
        quick ? "1" : "3",
        "-mr",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(o.stdout);
    const m = /^\+F:\d+:[^:]+:([\d.]+)/m.exec(text);
    ceilings.openssl_sha256_16384_MBps = m ? Number(m[1]) / MB : NaN;
  } catch (e) {
    ceilings.openssl_sha256_16384_MBps = String(e);
  }

  // node:crypto in Deno, as a registry would use it.
  const { createHash } = await import("node:crypto");
  for (const upd of [8 * MiB, 64 * 1024]) {
    const total = 512 * MiB;
    const xs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const secs = await timed(() => {
        const h = createHash("sha256");
        for (let o = 0; o < total; o += upd) {
          h.update(pattern.subarray(o % pattern.length, (o % pattern.length) + upd));
        }
        h.digest("hex");
        return Promise.resolve();
      });
      xs.push(total / MB / secs);
    }
    ceilings[`node_crypto_sha256_${upd / 1024}KiB_updates_MBps`] = stat(xs);
  }

  // File write from one buffer (what a push must also do): page cache only, and with
  // fdatasync (what a crash-safe registry pays before it makes a blob visible).
  for (const sync of [false, true]) {
    const dir = await Deno.makeTempDir({ dir: root, prefix: "fsw-" });
    const xs: number[] = [];
    for (let r = 0; r < Math.max(3, Math.min(RUNS, 5)); r++) {
      const p = `${dir}/f${r}`;
      await waitQuiet();
      const secs = await timed(() => writeRepeated(p, SINK_SIZE, pattern, sync));
      xs.push(SINK_SIZE / MB / secs);
      await Deno.remove(p);
    }
    ceilings[`fs_write${sync ? "_fdatasync" : ""}_${sizeLabel(SINK_SIZE).replace(" ", "")}_MBps`] =
      stat(xs);
    await Deno.remove(dir, { recursive: true });
  }

  await durableWriteCeilings(root);

  // Trivial servers: Deno.serve and a raw TCP sink, with the same client.
  log(`ceilings: sinks, ${sizeLabel(SINK_SIZE)}, ${RUNS} runs + warm-up`);
  const sink = await startSink(root, SINK_SIZE, opt.keep);
  const acc0 = cpuSnapshot({ sink: sink.pid });
  try {
    const L = sizeLabel(SINK_SIZE).replace(" ", "");
    const pushWhole = async (c: HttpConn) => {
      await pushMonolithic(c, "sink", {
        pattern,
        offset: 0,
        length: SINK_SIZE,
        digest: "sha256:00",
      });
      return SINK_SIZE;
    };
    const pull = (path: string) => async (c: HttpConn) =>
      (await c.request("GET", path, { sink: pullBuf })).bodyBytes;
    // Small blobs: per-request overhead (64 pushes of 1 MiB = 128 requests per run).
    const batch1 = async (c: HttpConn) => {
      for (let i = 0; i < 64; i++) {
        await pushMonolithic(c, "sink", { pattern, offset: i, length: MiB, digest: "sha256:00" });
      }
      return 64 * MiB;
    };
    const cases: [string, number, (c: HttpConn) => Promise<number>][] = [
      [`deno_serve_sink_push_${L}_MBps`, sink.port, pushWhole],
      [`deno_serve_sink_pull_mem_${L}_MBps`, sink.port, pull(`/mem/${SINK_SIZE}`)],
      [`deno_serve_sink_pull_file_${L}_MBps`, sink.port, pull("/file")],
      [`raw_tcp_sink_push_${L}_MBps`, sink.extra.raw, pushWhole],
      [`raw_tcp_sink_pull_${L}_MBps`, sink.extra.raw, pull(`/mem/${SINK_SIZE}`)],
      [`deno_serve_sink_push_1MiBx64_MBps`, sink.port, batch1],
      [`raw_tcp_sink_push_1MiBx64_MBps`, sink.extra.raw, batch1],
    ];
    for (const [name, port, fn] of cases) {
      const c = new HttpConn(HOST, port);
      try {
        await fn(c);
        const xs: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          let n = 0;
          await waitQuiet();
          const secs = await timed(async () => {
            n = await fn(c);
          });
          if (n !== SINK_SIZE && n !== 64 * MiB) throw new Error(`got ${n} bytes`);
          xs.push(n / MB / secs);
        }
        ceilings[name] = stat(xs);
      } catch (e) {
        ceilings[name] = String(e);
      } finally {
        c.close();
      }
    }
    // The durable sink, unless measured beside Simple Registry in its own sections already.
    const durableCases: [string, (run: number) => Promise<number>, number][] = [
      [DURABLE_1MIB, (run) => durableBatch(sink.port, 1000 + run), DURABLE_BATCH * MiB],
      [DURABLE_CONCURRENT, (run) => durableConcurrent(sink.port, 1000 + run), 16 * CONC_SIZE],
    ];
    for (const [name, fn, bytes] of durableCases) {
      if (name in ceilings) continue;
      try {
        const rates: number[] = [];
        for (let r = 0; r <= RUNS; r++) {
          await waitQuiet();
          const secs = await fn(r);
          if (r > 0) rates.push(bytes / MB / secs);
        }
        ceilings[name] = stat(rates);
      } catch (e) {
        ceilings[name] = String(e);
      }
    }
    // hey against a trivial Deno.serve manifest handler: the ceiling of hey + Deno.serve here.
    const url = `http://${HOST}:${sink.port}/manifest`;
    for (const conc of [1, 64]) {
      for (const method of ["HEAD", "GET"]) {
        const key = `deno_serve_sink_manifest_${method}_c${conc}`;
        try {
          await runHey(url, method, conc, 1);
          const rs: HeyResult[] = [];
          for (let r = 0; r < Math.min(RUNS, 3); r++) {
            await waitQuiet();
            rs.push(await runHey(url, method, conc, HEY_SECONDS));
          }
          ceilings[`${key}_rps`] = stat(rs.map((x) => x.rps));
          ceilings[`${key}_p99_ms`] = stat(rs.map((x) => x.p99));
        } catch (e) {
          ceilings[`${key}_rps`] = String(e);
        }
      }
    }
  } finally {
    sectionCpu.push({
      section: "ceilings (sinks)",
      server: "sink",
      usage: cpuUsage(acc0, cpuSnapshot({ sink: sink.pid })),
    });
    await sink.stop();
  }
}

/**
 * GET /v2/ from a separate client while a 1 GiB push and the first pull of another 1 GiB blob run
 * at once, and while eight clients pull one 256 MiB blob for the first time (issue 18, finding 8);
 * the servers take turns round by round (bench/stall.ts).
 */
async function sectionStall(servers: Server[], pids: Record<string, number>): Promise<void> {
  const a = cpuSnapshot(pids);
  let rounds: Record<string, StallRound[]> = {};
  try {
    rounds = await benchStall(servers, { runs: RUNS, quick, log, waitQuiet });
  } catch (e) {
    log(`stall failed: ${e}`);
    figure("stall_failed", "", "", "lower").errors.sr = String(e);
  }
  sectionCpu.push({ section: "stall", server: "both", usage: cpuUsage(a, cpuSnapshot(pids)) });
  const size = quick ? "256 MiB" : "1 GiB";
  const during = `during ${size} push + ${size} first pull`;
  const p = (q: number, pick: (r: StallRound) => number[]) => (r: StallRound) =>
    quantile(pick(r), q);
  const rows: { id: string; label: string; unit: string; value: (r: StallRound) => number }[] = [
    {
      id: "quiet_p99",
      label: "GET /v2/ p99, nothing else running",
      unit: "ms",
      value: p(0.99, (r) => r.quiet),
    },
    {
      id: "push_pull_p50",
      label: `GET /v2/ p50 ${during}`,
      unit: "ms",
      value: p(0.5, (r) => r.transfer),
    },
    {
      id: "push_pull_p99",
      label: `GET /v2/ p99 ${during}`,
      unit: "ms",
      value: p(0.99, (r) => r.transfer),
    },
    {
      id: "push_MBps",
      label: `push ${size} beside the first pull`,
      unit: "MB/s",
      value: (r) => r.pushMBps,
    },
    {
      id: "pull_MBps",
      label: `first pull ${size} beside the push`,
      unit: "MB/s",
      value: (r) => r.pullMBps,
    },
    {
      id: "streamed_p99",
      label: `GET /v2/ p99 during a ${size} chunked push (32 KiB frames, as docker)`,
      unit: "ms",
      value: p(0.99, (r) => r.streamed),
    },
    {
      id: "streamed_MBps",
      label: `chunked push ${size} (32 KiB frames)`,
      unit: "MB/s",
      value: (r) => r.streamedMBps,
    },
    {
      id: "first8_p99",
      label: "GET /v2/ p99 during 8 first pulls of one 256 MiB blob",
      unit: "ms",
      value: p(0.99, (r) => r.firstPulls),
    },
    {
      id: "first8_MBps",
      label: "8 first pulls of one 256 MiB blob, together",
      unit: "MB/s",
      value: (r) => r.firstPullsMBps,
    },
  ];
  for (const { id, label, unit, value } of rows) {
    const target = id === "push_pull_p99" ? "≤ 50 ms" : undefined;
    const better = unit === "ms" ? "lower" : "higher";
    const f = figure(`stall_${id}`, label, unit, better, target, target ? atMost(50) : undefined);
    for (const [key, runs] of Object.entries(rounds)) {
      f.values[key] = stat(runs.map(value));
      const failures = runs.flatMap((r) => r.failures);
      if (failures.length) f.errors[key] = `${failures.length} probe failures: ${failures[0]}`;
    }
  }
}

/**
 * Start-up, catalog and `/v2/tags/list` walks and a GC pass over 10,000 and 100,000 repositories
 * (issue 18, "Scale"; bench/scale.ts), on Simple Registry and `--base-main` taking turns. Fewer
 * rounds than the other sections: a round at 100,000 takes minutes.
 */
async function sectionScale(root: string): Promise<void> {
  const servers: ScaleServer[] = [];
  if (!opt["no-sr"]) servers.push({ key: "sr", label: "Simple Registry", main: srMain });
  const base = opt["base-main"];
  if (base) servers.push({ key: "dist", label: `base ${base}`, main: base });
  const sizes = quick ? [1000, 10_000] : [10_000, 100_000];
  const runs = Math.min(RUNS, 3);
  let results: Awaited<ReturnType<typeof benchScale>> = {};
  try {
    results = await benchScale(servers, { sizes, runs, root, log, waitQuiet });
  } catch (e) {
    log(`scale failed: ${e}`);
    figure("scale_failed", "", "", "lower").errors.sr = String(e);
  }
  const rows: { id: string; label: string; value: (r: ScaleRound) => number }[] = [
    { id: "start_v2", label: "start-up to the first 200 on /v2/", value: (r) => r.startV2 },
    {
      id: "start_catalog",
      label: "start-up to the first catalog page",
      value: (r) => r.startCatalog,
    },
    {
      id: "catalog100",
      label: "catalog walk n=100, per page",
      value: (r) => r.catalog100.ms / r.catalog100.pages,
    },
    {
      id: "catalog1000",
      label: "catalog walk n=1000, per page",
      value: (r) => r.catalog1000.ms / r.catalog1000.pages,
    },
    { id: "catalog100_all", label: "catalog walk n=100, all pages", value: (r) => r.catalog100.ms },
    {
      id: "alltags",
      label: "/v2/tags/list walk n=1000, per page",
      value: (r) => r.allTags.ms / r.allTags.pages,
    },
    {
      id: "alltags_all",
      label: "/v2/tags/list walk n=1000, all pages",
      value: (r) => r.allTags.ms,
    },
    { id: "gc", label: "gc --dry-run, process start to exit", value: (r) => r.gc },
  ];
  for (const size of sizes) {
    for (const { id, label, value } of rows) {
      const f = figure(`scale_${size}_${id}`, `${label}, ${size} repositories`, "ms", "lower");
      for (const [key, rounds] of Object.entries(results[size] ?? {})) {
        f.values[key] = stat(rounds.map(value));
      }
    }
  }
}

/** The stall and scale figures with their ranges: on a shared machine the spread is the news. */
function rangeTable(): string {
  const rows = [[
    "figure",
    "Simple Registry: median (range)",
    `${opt["base-main"] ? "base" : "distribution"}: median (range)`,
  ]];
  const cell = (v: Stat | undefined, unit: string) =>
    v ? `${fmt(v.median, unit)} (${fmt(v.min, unit)}–${fmt(v.max, unit)})` : "—";
  for (const f of figures) {
    if (!/^(stall|scale)_/.test(f.id) || !f.label) continue;
    rows.push([`${f.label} (${f.unit})`, cell(f.values.sr, f.unit), cell(f.values.dist, f.unit)]);
  }
  return pad(rows);
}

/** The auth section's runs, one per server: its own servers, started with an htpasswd file. */
const floods: { server: string; label: string; runs: FloodResult[] }[] = [];

/**
 * A logged-in user's GET /v2/ during a flood of Basic logins with fresh usernames at bcrypt cost 12
 * (issue 18, finding 2), on Simple Registry, `--auth-base` (before/after) and distribution.
 */
async function sectionAuth(root: string): Promise<void> {
  const htpasswd = `${root}/auth-htpasswd`;
  await writeFloodHtpasswd(htpasswd);
  const flags = ["--htpasswd", htpasswd];
  const starters: [string, string, () => Promise<Server>][] = [];
  if (!opt["no-sr"]) {
    starters.push([
      "sr",
      "Simple Registry",
      () => startSimpleRegistry(srMain, root, opt.keep, flags),
    ]);
  }
  if (opt["auth-base"]) {
    const base = opt["auth-base"];
    starters.push(["base", `base ${base}`, () => startSimpleRegistry(base, root, opt.keep, flags)]);
  }
  if (!opt["no-dist"] && distInstalled()) {
    const config = ["auth:", "  htpasswd:", "    realm: bench", `    path: ${htpasswd}`];
    starters.push(["dist", "distribution", () => startDistribution(root, opt.keep, true, config)]);
  }
  const figures = [false, true].map((spread) => {
    const id = spread ? "auth_flood_spread" : "auth_flood";
    const what = spread ? "bcrypt-12 flood from 70 addresses" : "bcrypt-12 flood";
    return {
      spread,
      p50: figure(`${id}_p50`, `cached user GET /v2/ p50, ${what}`, "ms", "lower"),
      p99: figure(
        `${id}_p99`,
        `cached user GET /v2/ p99, ${what}`,
        "ms",
        "lower",
        "≤ 50 ms",
        atMost(50),
      ),
    };
  });
  for (const [key, label, start] of starters) {
    const s = await start();
    try {
      for (const { spread, p50, p99 } of figures) {
        const runs: FloodResult[] = [];
        const name = `${label}, ${spread ? "70 addresses" : "one address"}`;
        try {
          log(`${name}: bcrypt flood, ${RUNS} runs`);
          for (let r = 0; r < RUNS; r++) {
            await waitQuiet();
            const options = { quietMs: 2000, logins: 70, parallel: 8, pauseMs: 10, spread };
            runs.push(await measureFlood(s.port, options));
          }
          if (key !== "base") {
            p50.values[key] = stat(runs.map((run) => quantile(run.flood, 0.5)));
            p99.values[key] = stat(runs.map((run) => quantile(run.flood, 0.99)));
          }
        } catch (e) {
          (key === "base" ? p99.notes : p99.errors)[key] = String(e);
          log(`${name}: bcrypt flood failed: ${e}`);
        } finally {
          floods.push({ server: key, label: name, runs });
        }
      }
    } finally {
      await s.stop();
    }
  }
}

function floodTable(): string {
  const rows = [[
    "bcrypt-12 flood (70 logins, 8 at once), from",
    "quiet p50/p99 ms",
    "flood p50/p99 ms",
    "flood s",
    "flood answers",
    "user refused",
  ]];
  const ms = (xs: number[], q: number) => fmt(quantile(xs, q), "ms");
  for (const { label, runs } of floods) {
    runs.forEach((run, i) => {
      rows.push([
        `${label} run ${i + 1}`,
        `${ms(run.quiet, 0.5)} / ${ms(run.quiet, 0.99)} (n=${run.quiet.length})`,
        `${ms(run.flood, 0.5)} / ${ms(run.flood, 0.99)} (n=${run.flood.length})`,
        run.floodSeconds.toFixed(1),
        Object.entries(run.floodStatuses).map(([k, v]) => `${k}×${v}`).join(" "),
        Object.entries(run.userRefused).map(([k, v]) => `${k}×${v}`).join(" ") || "none",
      ]);
    });
  }
  return pad(rows);
}

// ---------------------------------------------------------------- output

function fmt(x: number | undefined, unit: string): string {
  if (x === undefined || !Number.isFinite(x)) return "—";
  if (unit === "ms") return x < 10 ? x.toFixed(2) : x.toFixed(1);
  if (unit === "count") return String(Math.round(x));
  if (Math.abs(x) >= 100) return Math.round(x).toString();
  return x.toFixed(1);
}

function pad(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, ri) => {
    const line = "| " + r.map((c, i) => c.padEnd(w[i])).join(" | ") + " |";
    if (ri === 0) {
      return line + "\n|" + w.map((x) => "-".repeat(x + 2)).join("|") + "|";
    }
    return line;
  }).join("\n");
}

function table(): string {
  const rows = [[
    "figure",
    "Simple Registry",
    opt["base-main"] ? "base" : "distribution",
    opt["base-main"] ? "ratio SR/base" : "ratio SR/dist",
    "target",
    "met",
    "ceiling here",
    "OTHER cores SR/dist",
  ]];
  // The CPU of other processes while a figure was measured (p50/p99 and RSS rows share the
  // measurement of their req/s or push row).
  const cpuOf = (f: Figure): Figure => {
    const id = f.id.replace(/_p(50|99)$/, "_rps").replace(/^rss_push_/, "push_")
      .replace(/^concurrent_errors$/, "concurrent_16x4MiB");
    return figById.get(id) ?? f;
  };
  const others = (f: Figure, k: string) => {
    const u = cpuOf(f).cpu[k];
    return u ? u.othersCores.toFixed(2) : "—";
  };
  for (const f of figures) {
    if (!f.label) continue;
    const sr = f.values.sr?.median;
    const d = f.values.dist?.median;
    const ratio = sr !== undefined && d !== undefined && d !== 0 ? sr / d : undefined;
    let met = "";
    if (f.check && sr !== undefined) met = f.check(sr, d) ? "yes" : "NO";
    if (f.errors.sr && f.id !== "concurrent_errors") met = "ERR";
    rows.push([
      `${f.label} (${f.unit})`,
      f.errors.sr && sr === undefined ? "error" : fmt(sr, f.unit),
      f.errors.dist && d === undefined ? "error" : fmt(d, f.unit),
      ratio === undefined ? "—" : `${ratio.toFixed(2)}×`,
      f.target ?? "",
      met,
      ceilingOf(f),
      f.id === "rss_idle" ? "" : `${others(f, "sr")}/${others(f, "dist")}`,
    ]);
  }
  return pad(rows);
}

function cpuTable(): string {
  const rows = [[
    "figure / section",
    "server",
    "timed s",
    "server cores",
    "our procs cores",
    "OTHER procs cores",
    "kernel+irq cores",
    "steal",
    "machine cores",
  ]];
  for (const f of figures) {
    for (const [k, u] of Object.entries(f.cpu)) {
      rows.push([
        f.label,
        k,
        u.seconds.toFixed(1),
        (u.servers[k] ?? 0).toFixed(2),
        u.oursCores.toFixed(2),
        u.othersCores.toFixed(2),
        u.kernelCores.toFixed(2),
        u.stealCores.toFixed(2),
        u.machineCores.toFixed(2),
      ]);
    }
  }
  for (const s of sectionCpu) {
    rows.push([
      s.section,
      s.server,
      s.usage.seconds.toFixed(1),
      (s.usage.servers[s.server] ?? 0).toFixed(2),
      s.usage.oursCores.toFixed(2),
      s.usage.othersCores.toFixed(2),
      s.usage.kernelCores.toFixed(2),
      s.usage.stealCores.toFixed(2),
      s.usage.machineCores.toFixed(2),
    ]);
  }
  return pad(rows);
}

function ceilingText(): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(ceilings)) {
    const unit = k.endsWith("_MBps")
      ? "MB/s"
      : k.endsWith("_rps")
      ? "req/s"
      : k.endsWith("_ms")
      ? "ms"
      : "";
    const val = typeof v === "object"
      ? `${fmt(v.median, unit)} ${unit} (runs ${v.runs.map((x) => fmt(x, unit)).join(", ")})`
      : typeof v === "number"
      ? `${fmt(v, unit)} ${unit}`
      : v;
    lines.push(`  ${k.replace(/_(MBps|rps|ms)$/, "")}: ${val}`);
  }
  return lines.join("\n");
}

async function machineInfo(): Promise<Record<string, unknown>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  return {
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1],
    sha_ni: /\bsha_ni\b/.test(cpuinfo),
    cores: navigator.hardwareConcurrency,
    memGiB: Math.round(Deno.systemMemoryInfo().total / GiB),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    loadavgAtStart: Deno.loadavg(),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const root = await Deno.makeTempDir({ prefix: "sr-bench-" });
  const servers: Server[] = [];
  let durable: Server | undefined;
  let retention: RetentionFigures | undefined;
  const stopAll = async () => {
    for (const s of [...servers, ...durable ? [durable] : []]) await s.stop().catch(() => {});
    if (!opt.keep) await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const started = new Date().toISOString();
  const info = await machineInfo();
  const skipped: string[] = [];
  try {
    const needServers = [...SECTIONS].some((s) =>
      !["ceilings", "auth", "ui", "retention", "metrics", "mirror", "scale"].includes(s) &&
      want(s)
    );
    if (needServers && !opt["no-sr"]) {
      let exists = false;
      try {
        exists = Deno.statSync(srMain).isFile;
      } catch { /* missing */ }
      if (!exists) {
        skipped.push(`Simple Registry: ${srMain} does not exist`);
      } else {
        try {
          servers.push(await startSimpleRegistry(srMain, root, opt.keep));
        } catch (e) {
          skipped.push(`Simple Registry failed to start: ${e}`);
        }
      }
    }
    if (needServers && opt["base-main"]) {
      const base = await startSimpleRegistry(opt["base-main"], root, opt.keep);
      servers.push({ ...base, key: "dist", label: `Simple Registry (${opt["base-main"]})` });
    } else if (needServers && !opt["no-dist"]) {
      if (!distInstalled()) {
        skipped.push("distribution: /usr/bin/docker-registry not installed");
      } else {
        servers.push(
          await startDistribution(root, opt.keep, !opt["dist-no-cache"]),
        );
      }
    }
    for (const s of skipped) log(`skipped ${s}`);
    for (const s of servers) {
      log(`${s.label} (${s.version}) pid ${s.pid} on ${HOST}:${s.port}, dir ${s.dir}`);
    }
    const pids = Object.fromEntries(servers.map((s) => [s.key, s.pid]));
    if (want("mono") || want("rss")) {
      const idle = figure("rss_idle", "RSS idle after start", "MiB", "lower");
      for (const s of servers) idle.values[s.key] = stat([currentRss(s.pid) / MiB]);
    }
    // Pre-compute all digests outside any timing (1 GiB hashes take ~0.6 s).
    const runSection = async (
      name: Section,
      fn: (s: Server) => Promise<void>,
    ) => {
      for (const s of servers) {
        // Untimed: write back what earlier sections left dirty (distribution never flushes its
        // files), so one server's backlog is not written on the other's time.
        await new Deno.Command("sync").output();
        const a = cpuSnapshot(pids);
        await fn(s);
        sectionCpu.push({
          section: name,
          server: s.key,
          usage: cpuUsage(a, cpuSnapshot(pids)),
        });
      }
    };
    // The durable sink's ceilings run beside Simple Registry's own runs, in the same disk state.
    durable = want("mono") || want("concurrent") ? await startSink(root, 0, opt.keep) : undefined;
    const beside = (s: Server) => s.key === "sr" ? durable : undefined;
    if (want("mono")) await runSection("mono", (s) => sectionMono(s, false, beside(s)));
    else if (want("rss")) await runSection("rss", (s) => sectionMono(s, true));
    if (want("chunked")) await runSection("chunked", sectionChunked);
    if (want("concurrent")) {
      await runSection("concurrent", (s) => sectionConcurrent(s, beside(s)));
    }
    await durable?.stop();
    if (want("manifest")) await runSection("manifest", sectionManifest);
    if (want("stall")) await sectionStall(servers, pids);
    for (const s of servers) await s.stop();
    if (want("metrics") && !opt["no-sr"]) await sectionMetrics(root);
    if (want("mirror") && !opt["no-sr"]) {
      mirrorFigures = await benchMirror({
        root,
        srMain,
        runs: RUNS,
        quick,
        keep: opt.keep,
        withDistribution: !opt["no-dist"],
        log,
        waitQuiet,
        stat,
      }).catch((e) => {
        log(`mirror failed: ${e}`);
        skipped.push(`mirror: ${e}`);
        return [];
      });
    }
    if (want("ceilings")) await sectionCeilings(root);
    if (want("auth")) await sectionAuth(root);
    if (want("scale")) await sectionScale(root);
    // The web UI's pages: an in-process registry of its own (bench/ui.ts).
    if (want("ui")) {
      uiFigures = await benchUi({ runs: RUNS, quick, log });
      log(`ui figures (median of ${RUNS} runs; the runs after it):\n${uiTable(uiFigures)}`);
    }
    // In process, no servers: retention over 10,000 tags and config reloads (bench/retention.ts).
    if (want("retention")) retention = await benchRetention(quick ? 2_000 : 10_000, log);
  } finally {
    await stopAll();
  }

  const out = table();
  console.log(
    `\nSimple Registry vs CNCF distribution — medians of ${RUNS} runs after a warm-up, MB = 10^6 bytes${
      quick ? " (--quick)" : ""
    }`,
  );
  console.log(
    `machine: ${info.cpu}, ${info.cores} cores, ${info.memGiB} GiB, kernel ${info.kernel}, deno ${info.deno}`,
  );
  for (const s of skipped) console.log(`skipped: ${s}`);
  console.log();
  console.log(out);
  if (mirrorFigures.length) {
    console.log(`\nSimple Registry as a mirror (one process each: upstream, mirror; fs storage):`);
    console.log(mirrorTable(mirrorFigures));
  }
  if (Object.keys(ceilings).length) {
    console.log(`\nceilings (same client, same machine):\n${ceilingText()}`);
  }
  if (floods.length) console.log(`\n${floodTable()}`);
  if (figures.some((f) => /^(stall|scale)_/.test(f.id) && f.label)) {
    console.log(`\nstall and scale rounds (servers taking turns):\n${rangeTable()}`);
  }
  console.log(
    `\nwaited for a quiet machine ${quiet.waits} times, ${
      quiet.waitedSeconds.toFixed(1)
    } s in all, gave up ${quiet.gaveUp} times (threshold ${QUIET_CORES} cores of other processes)`,
  );
  console.log(
    `\nCPU during the timed runs (cores, averaged; 2 cores total; "OTHER" = not this bench, its servers or tools):\n${cpuTable()}`,
  );
  const errs = figures.flatMap((f) =>
    Object.entries(f.errors).map(([k, e]) => `  ${f.id} [${k}]: ${e}`)
  );
  if (errs.length) console.log(`\nerrors:\n${errs.join("\n")}`);

  const json = {
    started,
    finished: new Date().toISOString(),
    command: `deno run -A bench/main.ts ${Deno.args.join(" ")}`.trim(),
    quick,
    runs: RUNS,
    heySeconds: HEY_SECONDS,
    machine: info,
    servers: servers.map((s) => ({ key: s.key, label: s.label, version: s.version })),
    skipped,
    figures: figures.filter((f) => f.label).map((f) => ({
      id: f.id,
      label: f.label,
      unit: f.unit,
      better: f.better,
      target: f.target,
      values: f.values,
      ratio: f.values.sr && f.values.dist ? f.values.sr.median / f.values.dist.median : null,
      met: f.check && f.values.sr ? f.check(f.values.sr.median, f.values.dist?.median) : null,
      cpu: f.cpu,
      errors: f.errors,
      notes: f.notes,
    })),
    mirror: mirrorFigures,
    ceilings,
    floods,
    ui: uiFigures,
    retention,
    sectionCpu,
    quietWaits: { ...quiet, maxPerRun: QUIET_WAIT, belowCores: QUIET_CORES },
    table: out,
  };
  await Deno.writeTextFile(outPath, JSON.stringify(json, null, 2) + "\n");
  console.log(`\nwrote ${outPath}`);
  return 0;
}

Deno.exit(await main());
