// The event loop under big transfers (issue 18, finding 8): GET /v2/ latency from a separate
// client (bench/stall_probe.ts, in a Worker) while a 1 GiB push and the first pull of another
// 1 GiB blob run at once, while a 1 GiB blob is pushed as docker streams a layer (one chunked
// PATCH), and while eight clients pull one 256 MiB blob for the first time. The
// servers take turns round by round (the order alternating), so both meet the same moments of a
// shared machine; with --base-main that is a change and its base, side by side.
//
//   deno task bench --only stall [--runs N] [--base-main PATH]   (bench/main.ts calls benchStall)

import { HttpConn } from "./http.ts";
import {
  blob,
  deleteBlob,
  makePattern,
  MiB,
  pullBlob,
  pushMonolithic,
  pushStreamed,
} from "./oci.ts";
import { HOST, type Server } from "./servers.ts";
import { parseDigest } from "../src/grammar.ts";
import { blobPath } from "../src/storage/paths.ts";

const GiB = 1024 * MiB;
const MB = 1e6;
const REPO = "bench/stall";
const PROBE_PAUSE_MS = 10;
/** The frames of a streamed push: Go's io.Copy writes 32 KiB at a time. */
const STREAM_FRAME = 32 * 1024;
/** How long the floor is probed before the transfers start. */
const QUIET_MS = 1000;

/** One round's figures on one server; latencies in ms, rates in MB/s. */
export interface StallRound {
  /** /v2/ latencies with nothing else running: this moment's floor on a shared machine. */
  quiet: number[];
  /** /v2/ latencies while a 1 GiB push and a 1 GiB first pull run at once. */
  transfer: number[];
  pushMBps: number;
  pullMBps: number;
  /** /v2/ latencies while a blob of the same size is pushed alone as docker does (chunked). */
  streamed: number[];
  streamedMBps: number;
  /** /v2/ latencies while eight clients pull one 256 MiB blob for the first time. */
  firstPulls: number[];
  firstPullsMBps: number;
  failures: string[];
}

export interface StallOptions {
  runs: number;
  quick: boolean;
  log: (line: string) => void;
  /** Waits for a quieter machine before a timed run. */
  waitQuiet: () => Promise<void>;
}

/** Runs `options.runs` rounds (plus a warm-up) on every server; resolves to rounds by server key. */
export async function benchStall(
  servers: Server[],
  options: StallOptions,
): Promise<Record<string, StallRound[]>> {
  const pattern = makePattern();
  const size = options.quick ? 256 * MiB : GiB;
  const results: Record<string, StallRound[]> = {};
  for (let r = 0; r <= options.runs; r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      options.log(`stall: ${s.label} round ${r}${r === 0 ? " (warm-up)" : ""}`);
      const round = await stallRound(s, pattern, size, r, options);
      if (r > 0) (results[s.key] ??= []).push(round);
    }
  }
  return results;
}

async function stallRound(
  s: Server,
  pattern: Uint8Array,
  size: number,
  r: number,
  options: StallOptions,
): Promise<StallRound> {
  const sink = new Uint8Array(8 * MiB);
  const pushed = blob(pattern, "stall-push", r, size);
  const pulled = blob(pattern, "stall-pull", r, size);
  const streamed = blob(pattern, "stall-streamed", r, size);
  const shared = blob(pattern, "stall-shared", r, 256 * MiB);
  const setup = new HttpConn(HOST, s.port);
  const failures: string[] = [];
  try {
    // Untimed: the blobs to pull, then their dirty pages written back, so that each round starts
    // from the same disk state.
    await pushMonolithic(setup, REPO, pulled);
    await pushMonolithic(setup, REPO, shared);
    await new Deno.Command("sync").output();
    await options.waitQuiet();

    const floor = await startProbe(s.port);
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const quiet = await floor.stop();
    const probe = await startProbe(s.port);
    const [pushSecs, pullSecs] = await Promise.all([
      timed(async () => {
        const c = new HttpConn(HOST, s.port);
        try {
          await pushMonolithic(c, REPO, pushed);
        } finally {
          c.close();
        }
      }),
      timed(async () => {
        const c = new HttpConn(HOST, s.port);
        try {
          const n = await pullBlob(c, REPO, pulled.digest, sink);
          if (n !== size) throw new Error(`pulled ${n} bytes, want ${size}`);
        } finally {
          c.close();
        }
      }),
    ]);
    const transfer = await probe.stop();
    failures.push(...transfer.failures);

    await new Deno.Command("sync").output();
    await options.waitQuiet();
    const probeStreamed = await startProbe(s.port);
    const streamedSecs = await timed(async () => {
      const c = new HttpConn(HOST, s.port);
      try {
        await pushStreamed(c, REPO, streamed, STREAM_FRAME);
      } finally {
        c.close();
      }
    });
    const streamedLatencies = await probeStreamed.stop();
    failures.push(...streamedLatencies.failures);

    await new Deno.Command("sync").output();
    await options.waitQuiet();
    const probe2 = await startProbe(s.port);
    const firstSecs = await timed(async () => {
      await Promise.all(Array.from({ length: 8 }, async () => {
        const c = new HttpConn(HOST, s.port);
        const buffer = new Uint8Array(MiB);
        try {
          const n = await pullBlob(c, REPO, shared.digest, buffer);
          if (n !== shared.length) throw new Error(`pulled ${n} bytes, want ${shared.length}`);
        } finally {
          c.close();
        }
      }));
    });
    const first = await probe2.stop();
    failures.push(...quiet.failures, ...first.failures);
    return {
      quiet: quiet.latencies,
      transfer: transfer.latencies,
      pushMBps: size / MB / pushSecs,
      pullMBps: size / MB / pullSecs,
      streamed: streamedLatencies.latencies,
      streamedMBps: size / MB / streamedSecs,
      firstPulls: first.latencies,
      firstPullsMBps: 8 * shared.length / MB / firstSecs,
      failures,
    };
  } finally {
    for (const b of [pushed, pulled, streamed, shared]) {
      await deleteBlob(setup, REPO, b.digest).catch(() => 0);
      // Unlinked, the bytes wait for a GC pass: removed here instead, to keep the disk free
      // (Simple Registry's layout, then distribution's).
      const key = blobPath(parseDigest(b.digest)!);
      await Deno.remove(`${s.dir}/data/${key}`).catch(() => {});
      await Deno.remove(`${s.dir}/data/docker/registry/v2/${key}/data`).catch(() => {});
    }
    setup.close();
  }
}

interface Probe {
  stop(): Promise<{ latencies: number[]; failures: string[] }>;
}

/** Starts GET /v2/ on a connection of its own, in a Worker; `stop` resolves to its latencies. */
async function startProbe(port: number): Promise<Probe> {
  const worker = new Worker(new URL("./stall_probe.ts", import.meta.url), { type: "module" });
  const messages: MessageEvent[] = [];
  let wake: (() => void) | undefined;
  worker.onmessage = (event) => {
    messages.push(event);
    wake?.();
  };
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((resolve) => wake = resolve);
    return messages.shift()!.data;
  };
  worker.postMessage({ host: HOST, port, pauseMs: PROBE_PAUSE_MS });
  await next(); // started
  return {
    async stop() {
      worker.postMessage("stop");
      const result = await next();
      worker.terminate();
      return result;
    },
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}
