// Two Simple Registry checkouts, A and B, measured run for run: each round runs every figure on A
// and on B back to back (the order alternating between rounds), so both see the same moment of a
// shared, noisy machine. Prints the medians and the median of the per-round ratios B/A.
//
//   deno run -A bench/ab.ts A_MAIN_TS B_MAIN_TS [--rounds N] [--hey-seconds S]

import { parseArgs } from "node:util";
import { HttpConn } from "./http.ts";
import {
  blob,
  CONFIG_JSON,
  deleteBlob,
  makePattern,
  manifestFor,
  MiB,
  OCI_MANIFEST,
  pullBlob,
  pushBytes,
  pushMonolithic,
  putManifest,
} from "./oci.ts";
import { HOST, type Server, startSimpleRegistry } from "./servers.ts";

const { values: opt, positionals } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string" }, "hey-seconds": { type: "string" } },
  allowPositionals: true,
});
if (positionals.length !== 2) {
  console.error(
    "usage: deno run -A bench/ab.ts A_MAIN_TS B_MAIN_TS [--rounds N] [--hey-seconds S]",
  );
  Deno.exit(2);
}
const ROUNDS = Number(opt.rounds ?? 6);
const HEY_SECONDS = Number(opt["hey-seconds"] ?? 3);
const pattern = makePattern();
const sink = new Uint8Array(8 * MiB);
const REPO = "bench/ab";

async function hey(port: number, method: string, conc: number): Promise<number> {
  const out = await new Deno.Command("/usr/bin/hey", {
    args: [
      "-z",
      `${HEY_SECONDS}s`,
      "-c",
      String(conc),
      "-m",
      method,
      "-H",
      `Accept: ${OCI_MANIFEST}`,
    ]
      .concat(`http://${HOST}:${port}/v2/${REPO}/manifests/latest`),
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const bad = /\[([^2]\d\d)\]\s+(\d+) responses/.exec(text) ?? /Error distribution/.exec(text);
  if (bad) throw new Error(`hey: errors or non-2xx:\n${text}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
}

/** MB/s of `count` pushes (and then pulls) of distinct `size`-byte blobs on one connection. */
async function pushPull(port: number, size: number, count: number, round: number) {
  const c = new HttpConn(HOST, port);
  try {
    const blobs = Array.from(
      { length: count },
      (_, i) => blob(pattern, `ab${size}`, round * count + i, size),
    );
    let t = performance.now();
    for (const b of blobs) await pushMonolithic(c, REPO, b);
    const push = size * count / 1e6 / ((performance.now() - t) / 1000);
    t = performance.now();
    for (const b of blobs) await pullBlob(c, REPO, b.digest, sink);
    const pull = size * count / 1e6 / ((performance.now() - t) / 1000);
    for (const b of blobs) await deleteBlob(c, REPO, b.digest);
    return { push, pull };
  } finally {
    c.close();
  }
}

async function setup(port: number) {
  const c = new HttpConn(HOST, port);
  try {
    const config = await pushBytes(c, REPO, CONFIG_JSON);
    const layer = blob(pattern, "ab-layer", 0, 4096);
    await pushMonolithic(c, REPO, layer);
    await putManifest(
      c,
      REPO,
      "latest",
      manifestFor({ digest: config, size: CONFIG_JSON.length }, [
        { digest: layer.digest, size: layer.length },
      ]),
    );
  } finally {
    c.close();
  }
}

/** MB/s of 16 pushes of distinct 4 MiB blobs at once, each on its own connection. */
async function concurrentPushes(port: number, round: number): Promise<number> {
  const blobs = Array.from(
    { length: 16 },
    (_, i) => blob(pattern, "ab-conc", round * 16 + i, 4 * MiB),
  );
  const t = performance.now();
  await Promise.all(blobs.map(async (b) => {
    const c = new HttpConn(HOST, port);
    try {
      await pushMonolithic(c, REPO, b);
    } finally {
      c.close();
    }
  }));
  const rate = 16 * 4 * MiB / 1e6 / ((performance.now() - t) / 1000);
  const c = new HttpConn(HOST, port);
  try {
    for (const b of blobs) await deleteBlob(c, REPO, b.digest);
  } finally {
    c.close();
  }
  return rate;
}

type Figures = Record<string, number>;
async function round(port: number, r: number): Promise<Figures> {
  const small = await pushPull(port, MiB, 32, r);
  const big = await pushPull(port, 256 * MiB, 1, r);
  return {
    "push 1 MiB x32 (MB/s)": small.push,
    "pull 1 MiB x32 (MB/s)": small.pull,
    "push 256 MiB (MB/s)": big.push,
    "pull 256 MiB (MB/s)": big.pull,
    "push 4 MiB x16 at once (MB/s)": await concurrentPushes(port, r),
    "manifest HEAD c=1 (req/s)": await hey(port, "HEAD", 1),
    "manifest GET c=1 (req/s)": await hey(port, "GET", 1),
    "manifest HEAD c=64 (req/s)": await hey(port, "HEAD", 64),
    "manifest GET c=64 (req/s)": await hey(port, "GET", 64),
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const root = await Deno.makeTempDir({ prefix: "sr-ab-" });
const servers: Server[] = [];
try {
  for (const main of positionals) servers.push(await startSimpleRegistry(main, root, false));
  for (const s of servers) await setup(s.port);
  const results: Figures[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) results[i].push(await round(servers[i].port, r));
    console.error(`[ab] round ${r + 1}/${ROUNDS} done`);
  }
  console.log(
    `A: ${positionals[0]}\nB: ${positionals[1]}\nmedians of ${ROUNDS} interleaved rounds\n`,
  );
  console.log("| figure | A | B | B/A (median of per-round ratios) |\n|---|---|---|---|");
  for (const key of Object.keys(results[0][0])) {
    const a = results[0].map((f) => f[key]);
    const b = results[1].map((f) => f[key]);
    const ratio = median(a.map((x, i) => b[i] / x));
    console.log(
      `| ${key} | ${median(a).toFixed(0)} | ${median(b).toFixed(0)} | ${ratio.toFixed(2)}× |`,
    );
  }
} finally {
  for (const s of servers) await s.stop();
  await Deno.remove(root, { recursive: true }).catch(() => {});
}
