// S3 storage: a blob pushed and pulled through Simple Registry (--storage s3) vs. the same bytes
// PUT/GET straight to the same S3 with the same client (aws4fetch); issue 7's ratio (target >= 0.8).
// Manifest GET by tag on S3 (without and with a shared Redis, one and two instances) vs. fs
// storage, side by side with `hey` (issue 17's figures).
//
//   scripts/ceph/start.sh && set -a && . /tmp/simple-registry-ceph/env && set +a
//   deno run -A bench/s3.ts [--size MiB (1024)] [--runs N (1)] [--no-cross] [--keep]
//     [--only blob,manifest] [--hey-duration S (5)]
//
// Direct, two ways: (1) fetch: aws4fetch's own fetch, multipart in 16 MiB parts, 2 in flight
// (the driver's settings), from reused buffers; GET streamed and counted. (2) driver: the S3
// driver itself (same signing, socket-written part bodies), one append then a read: the
// registry minus HTTP in, hashing and the final server-side copy. Ratios use the faster. Registry: a separate `deno run main.ts` process; POST + PUT
// with the body (monolithic), GET into a reused buffer (bench/oci.ts). "cross": PATCH on A, PUT
// on B (B lacks A's running hash, so it re-reads the bytes from S3 to verify the digest).
// MB = 10^6 bytes; each figure is the median over --runs. Manifest lookups: one image (config, a
// 4 KiB layer, a manifest tagged `latest`) on each storage; hey GETs the tag for --hey-duration
// seconds at 1 and 16 connections, the setups' runs alternating after a warm-up of each. Two
// instances: two hey processes at once, one per instance, each with half the connections; the
// rates add up (latencies: the slower instance's). Redis: a redis-server of the bench's own.

import { parseArgs } from "node:util";
import { AwsClient } from "aws4fetch";
import { HttpConn, locationPath, patternSlices, withQuery } from "./http.ts";
import { type HeyResult, runHey } from "./hey.ts";
import {
  type Blob,
  blob,
  makePattern,
  MiB,
  pullBlob,
  pushMonolithic,
  pushSmallImage,
  startUpload,
} from "./oci.ts";
import { peakRss, resetPeakRss } from "./proc.ts";
import { freePort, HOST, type Server, spawnLogged, startSimpleRegistry } from "./servers.ts";
import { createS3Driver } from "../src/storage/s3/driver.ts";

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1024" },
    runs: { type: "string", default: "1" },
    "no-cross": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    only: { type: "string", default: "blob,manifest" },
    "hey-duration": { type: "string", default: "5" },
  },
  strict: true,
});
const only = new Set(opt.only.split(",").map((s) => s.trim()));
for (const s of only) {
  if (s !== "blob" && s !== "manifest") {
    console.error(`unknown section ${s}; sections: blob, manifest`);
    Deno.exit(2);
  }
}
const HEY_SECONDS = Number(opt["hey-duration"]);
const SIZE = Number(opt.size) * MiB;
const RUNS = Math.max(1, Number(opt.runs));
const PART = 16 * MiB;
const IN_FLIGHT = 2;
const MB = 1e6;

// ---------------------------------------------------------------- S3 settings

function settings() {
  let env: Record<string, string | undefined> = Deno.env.toObject();
  if (!env.S3_ENDPOINT) {
    try {
      const text = Deno.readTextFileSync("/tmp/simple-registry-ceph/env");
      env = Object.fromEntries(text.split("\n").filter(Boolean).map((l) => l.split("=", 2)));
    } catch {
      console.error("S3_ENDPOINT is unset: run scripts/ceph/start.sh and load its env file");
      Deno.exit(1);
    }
  }
  return {
    endpoint: env.S3_ENDPOINT!,
    bucket: env.S3_BUCKET ?? "registry",
    region: env.S3_REGION ?? "us-east-1",
    accessKey: env.S3_ACCESS_KEY ?? env.AWS_ACCESS_KEY_ID ?? "",
    secretKey: env.S3_SECRET_KEY ?? env.AWS_SECRET_ACCESS_KEY ?? "",
  };
}
const s3 = settings();
const prefix = `bench-${Date.now()}`;
const client = new AwsClient({
  accessKeyId: s3.accessKey,
  secretAccessKey: s3.secretKey,
  service: "s3",
  region: s3.region,
  retries: 0,
});
const objectUrl = (key: string, query = "") =>
  `${s3.endpoint}/${s3.bucket}/${key.split("/").map(encodeURIComponent).join("/")}${query}`;

async function s3Call(url: string, init: RequestInit): Promise<Response> {
  const response = await client.fetch(url, init);
  if (!response.ok) {
    throw new Error(`${init.method} ${url}: ${response.status} ${await response.text()}`);
  }
  return response;
}

/** Multipart PUT of a pattern body from reused part buffers, like the driver does. */
async function directPut(key: string, b: Blob): Promise<void> {
  const created = await (await s3Call(objectUrl(key, "?uploads"), { method: "POST" })).text();
  const uploadId = /<UploadId>(.*?)<\/UploadId>/.exec(created)![1];
  const etags: string[] = [];
  const free = Array.from({ length: IN_FLIGHT + 1 }, () => new Uint8Array(PART));
  const inFlight = new Set<Promise<void>>();
  let number = 0;
  const send = (buffer: Uint8Array<ArrayBuffer>, length: number) => {
    const n = ++number;
    const work = s3Call(
      objectUrl(key, `?partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`),
      {
        method: "PUT",
        headers: { "content-length": String(length) },
        body: buffer.subarray(0, length),
      },
    ).then(async (r) => {
      await r.body?.cancel();
      etags[n - 1] = r.headers.get("etag")!;
      free.push(buffer);
    });
    inFlight.add(work);
    work.finally(() => inFlight.delete(work));
  };
  let buffer = free.pop()!;
  let filled = 0;
  for (const slice of patternSlices(b, PART)) {
    let at = 0;
    while (at < slice.length) {
      const n = Math.min(slice.length - at, PART - filled);
      buffer.set(slice.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === PART) {
        send(buffer, filled);
        while (free.length === 0) await Promise.race(inFlight);
        buffer = free.pop()!;
        filled = 0;
      }
    }
  }
  if (filled > 0) send(buffer, filled);
  await Promise.all(inFlight);
  const body = `<CompleteMultipartUpload>${
    etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join("")
  }</CompleteMultipartUpload>`;
  await (await s3Call(objectUrl(key, `?uploadId=${encodeURIComponent(uploadId)}`), {
    method: "POST",
    body,
  })).text();
}

async function directGet(key: string): Promise<number> {
  const response = await s3Call(objectUrl(key), { method: "GET" });
  let n = 0;
  for await (const chunk of response.body!) n += chunk.length;
  return n;
}

async function directDelete(key: string): Promise<void> {
  await (await client.fetch(objectUrl(key), { method: "DELETE" })).body?.cancel();
}

// ---------------------------------------------------------------- registry processes

interface Registry {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startRegistry(label: string, extra: string[] = []): Promise<Registry> {
  const dir = await Deno.makeTempDir({ prefix: `bench-s3-${label}-` });
  const logPath = `${dir}/server.log`;
  const port = freePort();
  const args = [
    "run",
    "-A",
    new URL("../main.ts", import.meta.url).pathname,
    "--host",
    HOST,
    "--port",
    String(port),
    "--storage",
    "s3",
    "--s3-endpoint",
    s3.endpoint,
    "--s3-bucket",
    s3.bucket,
    "--s3-region",
    s3.region,
    "--s3-prefix",
    prefix,
    ...extra,
  ];
  const child = spawnLogged(Deno.execPath(), args, logPath, undefined, {
    AWS_ACCESS_KEY_ID: s3.accessKey,
    AWS_SECRET_ACCESS_KEY: s3.secretKey,
  });
  for (let i = 0; i < 600; i++) {
    const text = await Deno.readTextFile(logPath).catch(() => "");
    if (text.includes('"listening"')) {
      return {
        port,
        pid: child.pid,
        async stop() {
          child.kill("SIGTERM");
          await child.status;
          if (!opt.keep) await Deno.remove(dir, { recursive: true });
        },
      };
    }
    if (text.includes("error:")) throw new Error(`registry ${label} failed: ${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`registry ${label} did not start; see ${logPath}`);
}

// ---------------------------------------------------------------- runs

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (seconds: number) => SIZE / MB / seconds;
async function timed(work: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await work();
  return (performance.now() - t0) / 1000;
}

const pattern = makePattern();
const sink = new Uint8Array(4 * MiB);
const a = await startRegistry("a");
const b = opt["no-cross"] || !only.has("blob") ? undefined : await startRegistry("b");
const t: Record<string, number[]> = {};
for (const k of ["directPut", "directGet", "driverPut", "driverGet", "push", "pull"]) t[k] = [];
for (const k of ["putSame", "putCross"]) t[k] = [];
const bucket = {
  endpoint: s3.endpoint,
  bucket: s3.bucket,
  region: s3.region,
  pathStyle: true,
  accessKeyId: s3.accessKey,
  secretAccessKey: s3.secretKey,
};
const driver = createS3Driver({ ...bucket, prefix });
let rss = 0;
/** The manifest section's setups: instances (ports) hey drives at once. */
const SETUPS = ["fs", "s3", "s3 x2", "s3+redis", "s3+redis x2"] as const;
type Setup = typeof SETUPS[number];
const lookups: { conc: number; results: Map<Setup, HeyResult[]> }[] = [];
let fsRegistry: Server | undefined;
const extras: Registry[] = [];
let redisServer: Deno.ChildProcess | undefined;
try {
  for (let run = 0; only.has("blob") && run < RUNS; run++) {
    const data = blob(pattern, `s3-bench-${Date.now()}`, run, SIZE);
    const key = `${prefix}/direct/${run}`;
    t.directPut.push(await timed(() => directPut(key, data)));
    t.directGet.push(
      await timed(async () => {
        if (await directGet(key) !== SIZE) throw new Error("direct GET: short read");
      }),
    );
    await directDelete(key);
    t.driverPut.push(await timed(() => driver.append("driver/x", patternSlices(data, 64 * 1024))));
    t.driverGet.push(
      await timed(async () => {
        let n = 0;
        for await (const chunk of await driver.read("driver/x")) n += chunk.length;
        if (n !== SIZE) throw new Error("driver read: short read");
      }),
    );
    await driver.delete("driver");

    resetPeakRss(a.pid);
    const conn = new HttpConn(HOST, a.port);
    t.push.push(await timed(() => pushMonolithic(conn, "bench/s3", data)));
    t.pull.push(
      await timed(async () => {
        if (await pullBlob(conn, "bench/s3", data.digest, sink) !== SIZE) {
          throw new Error("short pull");
        }
      }),
    );
    rss = Math.max(rss, peakRss(a.pid));
    conn.close();

    if (b) {
      // The same upload finished where it was sent (running hash) and on another instance.
      for (const [label, finisher] of [["putSame", a], ["putCross", b]] as const) {
        const other = blob(pattern, `s3-bench-${label}-${Date.now()}`, run, SIZE);
        const ca = new HttpConn(HOST, a.port);
        const loc = await startUpload(ca, "bench/cross");
        const patched = await ca.request("PATCH", loc, {
          headers: { "content-type": "application/octet-stream" },
          body: other,
        });
        if (patched.status !== 202) throw new Error(`PATCH: ${patched.status}`);
        const cf = new HttpConn(HOST, finisher.port);
        const path = withQuery(
          locationPath(patched.headers.get("location")!),
          "digest",
          other.digest,
        );
        t[label].push(
          await timed(async () => {
            const r = await cf.request("PUT", path);
            if (r.status !== 201) throw new Error(`PUT on ${label}: ${r.status}`);
          }),
        );
        ca.close();
        cf.close();
      }
    }
    // This run's blobs go now (no later run pushes their digests again): kept to the end, a few
    // runs of 1 GiB blobs fill a small test cluster before its garbage collection catches up.
    await driver.delete("blobs");
  }
  if (only.has("manifest")) {
    fsRegistry = await startSimpleRegistry(
      new URL("../main.ts", import.meta.url).pathname,
      Deno.env.get("TMPDIR") ?? "/tmp",
      opt.keep,
    );
    const redisPort = freePort();
    redisServer = new Deno.Command("redis-server", {
      args: ["--port", String(redisPort), "--bind", HOST, "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const redis = ["--redis", `redis://${HOST}:${redisPort}`];
    const second = b ?? await startRegistry("b");
    if (!b) extras.push(second);
    const r1 = await startRegistry("r1", redis);
    const r2 = await startRegistry("r2", redis);
    extras.push(r1, r2);
    const ports: Record<Setup, number[]> = {
      "fs": [fsRegistry.port],
      "s3": [a.port],
      "s3 x2": [a.port, second.port],
      "s3+redis": [r1.port],
      "s3+redis x2": [r1.port, r2.port],
    };
    // One image on fs, one on the S3 prefix every S3 instance serves.
    for (const port of [fsRegistry.port, a.port]) {
      const c = new HttpConn(HOST, port);
      await pushSmallImage(c, "bench/manifest", "latest", pattern);
      c.close();
    }
    for (const conc of [1, 16]) {
      const results = new Map<Setup, HeyResult[]>();
      const setups = SETUPS.filter((setup) => conc >= ports[setup].length);
      const drive = async (setup: Setup, seconds: number) => {
        const targets = ports[setup];
        const each = await Promise.all(
          targets.map((port) => runHey(tagUrl(port), "GET", conc / targets.length, seconds)),
        );
        return {
          rps: each.reduce((sum, r) => sum + r.rps, 0),
          p50: Math.max(...each.map((r) => r.p50)),
          p99: Math.max(...each.map((r) => r.p99)),
          ok: each.reduce((sum, r) => sum + r.ok, 0),
          other: each.reduce((sum, r) => sum + r.other, 0),
          errors: each.reduce((sum, r) => sum + r.errors, 0),
        };
      };
      for (const setup of setups) await drive(setup, 1);
      for (let run = 0; run < RUNS; run++) {
        for (const setup of setups) {
          const r = await drive(setup, HEY_SECONDS);
          if (r.other + r.errors > 0) {
            throw new Error(`hey on ${setup}: ${r.other + r.errors} failed`);
          }
          results.set(setup, [...results.get(setup) ?? [], r]);
        }
      }
      lookups.push({ conc, results });
    }
  }
} finally {
  await a.stop();
  await b?.stop();
  await fsRegistry?.stop();
  for (const extra of extras) await extra.stop();
  if (redisServer) {
    redisServer.kill("SIGTERM");
    await redisServer.status;
  }
  // Everything the bench wrote lives under its prefix.
  await createS3Driver(bucket).delete(prefix).catch((e) => console.error(`cleanup: ${e}`));
}

function tagUrl(port: number): string {
  return `http://${HOST}:${port}/v2/bench/manifest/manifests/latest`;
}

const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.length ? median(v) : NaN]));
const row = (label: string, s: number) =>
  `  ${label.padEnd(34)} ${s.toFixed(2).padStart(7)} s ${mbps(s).toFixed(1).padStart(8)} MB/s`;
console.log(`S3 (${s3.endpoint}), median of ${RUNS} run(s)`);
if (only.has("blob")) {
  console.log(`blob ${SIZE / MiB} MiB`);
  const bestPut = Math.min(m.directPut, m.driverPut);
  const bestGet = Math.min(m.directGet, m.driverGet);
  console.log(row("direct PUT (aws4fetch fetch, multipart)", m.directPut));
  console.log(row("direct PUT (S3 driver append)", m.driverPut));
  console.log(row("registry push (POST + PUT body)", m.push));
  console.log(row("direct GET (aws4fetch fetch)", m.directGet));
  console.log(row("direct GET (S3 driver read)", m.driverGet));
  console.log(row("registry pull (GET blob)", m.pull));
  console.log(`  push ratio (registry/best direct throughput) ${(bestPut / m.push).toFixed(2)}`);
  console.log(`  pull ratio (registry/best direct throughput) ${(bestGet / m.pull).toFixed(2)}`);
  console.log(`  registry peak RSS during push+pull     ${(rss / MiB).toFixed(0)} MiB`);
  if (b) {
    console.log(`  PUT ?digest= after PATCH, same instance  ${m.putSame.toFixed(2)} s`);
    console.log(
      `  PUT ?digest= after PATCH, other instance ${m.putCross.toFixed(2)} s (re-reads to hash)`,
    );
  }
}
if (lookups.length > 0) {
  console.log(`manifest GET by tag (hey, ${HEY_SECONDS} s a run)`);
  // hey prints no 99th percentile for fewer than 100 requests.
  const ms = (rs: HeyResult[], key: "p50" | "p99") => {
    const value = median(rs.map((r) => r[key]));
    return Number.isFinite(value) ? `${value.toFixed(1).padStart(5)} ms` : "  n/a   ";
  };
  const cell = (rs: HeyResult[]) =>
    `${median(rs.map((r) => r.rps)).toFixed(0).padStart(6)} req/s, p50 ${ms(rs, "p50")}, p99 ${
      ms(rs, "p99")
    }`;
  for (const { conc, results } of lookups) {
    const fsRate = median(results.get("fs")!.map((r) => r.rps));
    for (const [setup, rs] of results) {
      const ratio = median(rs.map((r) => r.rps)) / fsRate;
      console.log(
        `  c=${String(conc).padEnd(3)} ${setup.padEnd(12)} ${cell(rs)}   /fs ${ratio.toFixed(3)}`,
      );
    }
  }
}
