// The "mirror" section of bench/main.ts (issue 13): an image pulled cold through a Simple Registry
// mirror vs straight from its upstream, and pulled warm from the mirror's cache vs from a local
// repository of the same registry, side by side in one run; CNCF distribution's proxy mode (one
// upstream per process, the anchor to beat) in front of the same upstream, for comparison.
//
// The upstream is a Simple Registry process on fs storage; the mirror another (`--proxy up=…`);
// distribution runs with `proxy.remoteurl`. A pull is what a client does: GET the manifest, then
// the config and layers over PULL_CONNECTIONS connections at once. Cold: every run pulls images
// no one has pulled yet — one straight from the upstream, one through each mirror — with the
// upstream's first read of each (its digest check) done beforehand, so only the path differs; the
// order rotates between runs. Warm: the mirror's cached image against an identical image pushed
// to a local repository of the mirror, after a first pull of each. CPU seconds per GB of each
// serving process come from /proc. The cold pulls also run through bench/relay.ts, bare and
// hashing and storing: the ceiling of any process between the client and the upstream here.

import { HttpConn } from "./http.ts";
import {
  type Blob,
  blob,
  CONFIG_JSON,
  makePattern,
  manifestFor,
  MiB,
  OCI_MANIFEST,
  pullBlob,
  pushBytes,
  pushMonolithic,
  putManifest,
} from "./oci.ts";
import { CLK_TCK, treeJiffies } from "./proc.ts";
import {
  distInstalled,
  HOST,
  type Server,
  startDistribution,
  startRelay,
  startSimpleRegistry,
} from "./servers.ts";

const MB = 1e6;
/** Layers fetched at once, as containerd and docker do by default (3). */
const PULL_CONNECTIONS = 3;

export interface MirrorStat {
  median: number;
  runs: number[];
}

export interface MirrorFigure {
  id: string;
  label: string;
  /** Simple Registry's mirror, the baseline, and distribution's proxy (when installed): MB/s. */
  mirror: MirrorStat;
  baseline: MirrorStat;
  baselineLabel: string;
  distribution?: MirrorStat;
  /** CPU seconds per GB pulled: the mirror process, the baseline's server, distribution's. */
  cpu: { mirror: number; baseline: number; distribution?: number };
  /**
   * The same pulls through bench/relay.ts (cold only): what any process between client and
   * upstream reaches here, bare and with the hash and the write a cache cannot skip.
   */
  ceilings?: { relay: MirrorStat; stored: MirrorStat };
  /** Mirror / baseline at least this. */
  target: number;
  met: boolean;
}

export interface MirrorBenchOptions {
  root: string;
  srMain: string;
  runs: number;
  quick: boolean;
  keep: boolean;
  withDistribution: boolean;
  log(line: string): void;
  waitQuiet(): Promise<void>;
  stat(xs: number[]): MirrorStat;
}

interface Image {
  repo: string;
  blobs: { digest: string; length: number }[];
  bytes: number;
}

/** Timed pulls of one kind: MB/s per run and CPU seconds of the serving process. */
interface Series {
  rates: number[];
  cpuSeconds: number;
  bytes: number;
}

const series = (): Series => ({ rates: [], cpuSeconds: 0, bytes: 0 });
const cpuPerGB = (s: Series) => s.bytes ? s.cpuSeconds / (s.bytes / 1e9) : NaN;

export async function benchMirror(o: MirrorBenchOptions): Promise<MirrorFigure[]> {
  const layers = o.quick ? 2 : 4;
  const layerSize = o.quick ? 32 * MiB : 64 * MiB;
  const pattern = makePattern();
  const started: Server[] = [];
  try {
    const upstream = await startSimpleRegistry(o.srMain, o.root, o.keep);
    started.push(upstream);
    const upstreamUrl = `http://${HOST}:${upstream.port}`;
    const mirror = await startSimpleRegistry(o.srMain, o.root, o.keep, [
      "--proxy",
      `up=${upstreamUrl}`,
    ]);
    started.push(mirror);
    const dist = o.withDistribution && distInstalled()
      ? await startDistribution(o.root, o.keep, true, ["proxy:", `  remoteurl: ${upstreamUrl}`])
      : undefined;
    if (dist) started.push(dist);
    const relay = await startRelay(o.root, upstreamUrl, false, o.keep);
    started.push(relay);
    const relayStored = await startRelay(o.root, upstreamUrl, true, o.keep);
    started.push(relayStored);
    const label = `${layers} × ${layerSize / MiB} MiB layers`;
    o.log(
      `mirror: images of ${label}, ${o.runs} runs + warm-up${dist ? ", distribution too" : ""}`,
    );

    let made = 0;
    /** Pushes a fresh image (blobs no server has seen) to `server`'s `repo`. */
    const push = async (server: Server, repo: string): Promise<Image> => {
      const id = made++;
      const c = new HttpConn(HOST, server.port);
      try {
        const config = new TextEncoder().encode(
          JSON.stringify({ ...JSON.parse(new TextDecoder().decode(CONFIG_JSON)), id }),
        );
        const configDigest = await pushBytes(c, repo, config);
        const bl: Blob[] = Array.from(
          { length: layers },
          (_, i) => blob(pattern, "mirror", id * layers + i, layerSize),
        );
        for (const b of bl) await pushMonolithic(c, repo, b);
        await putManifest(
          c,
          repo,
          "v1",
          manifestFor(
            { digest: configDigest, size: config.length },
            bl.map((b) => ({ digest: b.digest, size: b.length })),
          ),
        );
        return {
          repo,
          blobs: [
            { digest: configDigest, length: config.length },
            ...bl.map((b) => ({ digest: b.digest, length: b.length })),
          ],
          bytes: config.length + layers * layerSize,
        };
      } finally {
        c.close();
      }
    };
    /** One timed pull into `into` (a warm-up when `timed` is false); CPU of `server`. */
    const measure = async (
      server: Server,
      repo: string,
      image: Image,
      into: Series,
      timed: boolean,
    ) => {
      await o.waitQuiet();
      const before = treeJiffies(server.pid);
      const secs = await pull(server.port, repo, image);
      if (!timed) return;
      into.rates.push(image.bytes / MB / secs);
      into.cpuSeconds += (treeJiffies(server.pid) - before) / CLK_TCK;
      into.bytes += image.bytes;
    };

    const cold = {
      direct: series(),
      mirror: series(),
      dist: series(),
      relay: series(),
      stored: series(),
    };
    for (let r = 0; r <= o.runs; r++) {
      const runs: (() => Promise<void>)[] = [];
      const direct = await push(upstream, `bench/cold-direct-${r}`);
      runs.push(() => measure(upstream, direct.repo, direct, cold.direct, r > 0));
      const proxied = await push(upstream, `bench/cold-mirror-${r}`);
      runs.push(() => measure(mirror, `up/${proxied.repo}`, proxied, cold.mirror, r > 0));
      const images = [direct, proxied];
      for (const [server, into] of [[relay, cold.relay], [relayStored, cold.stored]] as const) {
        const relayed = await push(upstream, `bench/cold-${server.key}-${r}`);
        runs.push(() => measure(server, relayed.repo, relayed, into, r > 0));
        images.push(relayed);
      }
      if (dist) {
        const viaDist = await push(upstream, `bench/cold-dist-${r}`);
        runs.push(() => measure(dist, viaDist.repo, viaDist, cold.dist, r > 0));
        images.push(viaDist);
      }
      // The upstream's first read of each blob (its digest check) is not what differs, and
      // neither is the write-back of what was just pushed.
      for (const image of images) await pull(upstream.port, image.repo, image);
      await writeBack();
      for (let k = 0; k < r % runs.length; k++) runs.push(runs.shift()!);
      for (const run of runs) await run();
    }

    // Warm: cached images against the same bytes in a local repository of the mirror.
    const warm = { mirror: series(), local: series(), dist: series() };
    const cached = await push(upstream, "bench/warm");
    const local = await push(mirror, "bench/local");
    const warmRuns: [Server, string, Image, Series][] = [
      [mirror, `up/${cached.repo}`, cached, warm.mirror],
      [mirror, local.repo, local, warm.local],
    ];
    if (dist) warmRuns.push([dist, cached.repo, cached, warm.dist]);
    await writeBack();
    for (let r = 0; r <= o.runs + 1; r++) {
      // Run 0 fills the caches, run 1 is each one's first read from storage: both untimed.
      for (const [server, repo, image, into] of warmRuns) {
        await measure(server, repo, image, into, r > 1);
      }
      warmRuns.push(warmRuns.shift()!);
    }

    const figure = (
      id: string,
      what: string,
      m: Series,
      b: Series,
      baselineLabel: string,
      d: Series,
      target: number,
    ): MirrorFigure => {
      const mirrorStat = o.stat(m.rates);
      const baselineStat = o.stat(b.rates);
      return {
        id,
        label: `${what}, ${label}`,
        mirror: mirrorStat,
        baseline: baselineStat,
        baselineLabel,
        ...(d.rates.length > 0 && { distribution: o.stat(d.rates) }),
        cpu: {
          mirror: cpuPerGB(m),
          baseline: cpuPerGB(b),
          ...(d.rates.length > 0 && { distribution: cpuPerGB(d) }),
        },
        target,
        met: mirrorStat.median / baselineStat.median >= target,
      };
    };
    return [
      {
        ...figure(
          "mirror_cold_pull",
          "cold pull",
          cold.mirror,
          cold.direct,
          "straight from the upstream",
          cold.dist,
          0.9,
        ),
        ceilings: { relay: o.stat(cold.relay.rates), stored: o.stat(cold.stored.rates) },
      },
      figure(
        "mirror_warm_pull",
        "warm pull",
        warm.mirror,
        warm.local,
        "a local repository",
        warm.dist,
        0.95,
      ),
    ];
  } finally {
    for (const server of started.reverse()) await server.stop();
  }
}

/** Untimed: what the pushes left dirty is written back, so no timed pull pays for it. */
async function writeBack(): Promise<void> {
  await new Deno.Command("sync").output();
}

/** One pull: the manifest, then config and layers over PULL_CONNECTIONS connections; seconds. */
async function pull(port: number, repo: string, image: Image): Promise<number> {
  const t0 = performance.now();
  const conns = Array.from({ length: PULL_CONNECTIONS }, () => new HttpConn(HOST, port));
  try {
    const r = await conns[0].request("GET", `/v2/${repo}/manifests/v1`, {
      headers: { Accept: OCI_MANIFEST },
    });
    if (r.status !== 200) throw new Error(`GET manifest of ${repo}: HTTP ${r.status}`);
    const queue = [...image.blobs];
    await Promise.all(conns.map(async (conn) => {
      const buffer = new Uint8Array(8 * MiB);
      for (let next = queue.shift(); next; next = queue.shift()) {
        const got = await pullBlob(conn, repo, next.digest, buffer);
        if (got !== next.length) throw new Error(`${repo}: ${got} bytes of ${next.digest}`);
      }
    }));
  } finally {
    for (const conn of conns) conn.close();
  }
  return (performance.now() - t0) / 1000;
}

/** The mirror figures as a table of their own (they compare paths through one registry). */
export function mirrorTable(figures: MirrorFigure[]): string {
  const fmt = (x: number | undefined) =>
    x === undefined || !Number.isFinite(x) ? "—" : Math.round(x).toString();
  const cpu = (x: number | undefined) =>
    x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(2);
  const rows = [[
    "figure (MB/s)",
    "Simple Registry mirror",
    "baseline",
    "baseline is",
    "ratio",
    "target",
    "met",
    "distribution 2.8 proxy",
    "CPU s/GB mirror / baseline / dist",
    "ceiling here: bare relay / relay hashing and storing",
  ]];
  for (const f of figures) {
    rows.push([
      f.label,
      fmt(f.mirror.median),
      fmt(f.baseline.median),
      f.baselineLabel,
      `${(f.mirror.median / f.baseline.median).toFixed(2)}×`,
      `≥ ${f.target}×`,
      f.met ? "yes" : "NO",
      fmt(f.distribution?.median),
      `${cpu(f.cpu.mirror)} / ${cpu(f.cpu.baseline)} / ${cpu(f.cpu.distribution)}`,
      f.ceilings ? `${fmt(f.ceilings.relay.median)} / ${fmt(f.ceilings.stored.median)}` : "",
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, i) => {
    const line = "| " + r.map((c, j) => c.padEnd(w[j])).join(" | ") + " |";
    return i === 0 ? `${line}\n|${w.map((x) => "-".repeat(x + 2)).join("|")}|` : line;
  }).join("\n");
}
