// Listings at scale (issue 18, "Scale"): start-up (to the first 200 on /v2/ and to the first catalog
// page), the catalog walked page by page (n=100 and n=1000), `/v2/tags/list` walked, and an offline
// GC pass, over 10,000 and 100,000 repositories of one tag each on fs storage. The data directory
// is seeded by writing the layout's files directly (src/storage/paths.ts), not pushed over HTTP;
// the servers take turns on the same directory, round by round.
//
//   deno task bench --only scale [--quick] [--runs N] [--base-main PATH]   (bench/main.ts)

import { HttpConn } from "./http.ts";
import { freePort, HOST, spawnLogged } from "./servers.ts";
import {
  blobPath,
  catalogEntryPath,
  catalogIndexedPath,
  layerLinkPath,
  revisionLinkPath,
  tagPath,
} from "../src/storage/paths.ts";
import { parseDigest } from "../src/grammar.ts";
import { digestOf } from "../src/digest.ts";
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from "../src/oci/manifest.ts";

/** One server's figures over one round at one size; times in ms. */
export interface ScaleRound {
  /** From spawning the process to the first 200 on /v2/, and to the first catalog page. */
  startV2: number;
  startCatalog: number;
  /** Walks to the end following Link: total ms and pages. */
  catalog100: Walk;
  catalog1000: Walk;
  allTags: Walk;
  /** `gc --dry-run` from spawn to exit, and the manifests it marked. */
  gc: number;
  gcMarked: number;
}

export interface Walk {
  ms: number;
  pages: number;
  items: number;
}

export interface ScaleServer {
  key: string;
  label: string;
  main: string;
}

export interface ScaleOptions {
  sizes: number[];
  runs: number;
  root: string;
  log: (line: string) => void;
  waitQuiet: () => Promise<void>;
}

/** Rounds by size, then by server key. */
export type ScaleResults = Record<number, Record<string, ScaleRound[]>>;

export async function benchScale(
  servers: ScaleServer[],
  options: ScaleOptions,
): Promise<ScaleResults> {
  const results: ScaleResults = {};
  for (const size of options.sizes) {
    const dir = `${options.root}/scale-${size}`;
    const t0 = performance.now();
    await seed(dir, size);
    options.log(
      `scale: seeded ${size} repositories in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    results[size] = {};
    for (let r = 0; r < options.runs; r++) {
      const order = r % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        options.log(`scale: ${size} repositories, ${s.label}, round ${r + 1}/${options.runs}`);
        await new Deno.Command("sync").output();
        await options.waitQuiet();
        const round = await scaleRound(s, dir, size);
        (results[size][s.key] ??= []).push(round);
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
  return results;
}

async function scaleRound(s: ScaleServer, dataDir: string, size: number): Promise<ScaleRound> {
  const port = freePort();
  const logPath = `${dataDir}.${s.key}.log`;
  const t0 = performance.now();
  const child = spawnLogged(Deno.execPath(), [
    "run",
    "-A",
    s.main,
    "--host",
    HOST,
    "--port",
    String(port),
    "--storage",
    "fs",
    "--data-dir",
    dataDir,
  ], logPath);
  try {
    await untilOk(port, "/v2/", child);
    const startV2 = performance.now() - t0;
    const first = new HttpConn(HOST, port);
    const page = await first.request("GET", "/v2/_catalog?n=100");
    const startCatalog = performance.now() - t0;
    first.close();
    if (page.status !== 200) throw new Error(`first catalog page: HTTP ${page.status}`);

    const catalog100 = await walk(port, "/v2/_catalog?n=100", "repositories");
    const catalog1000 = await walk(port, "/v2/_catalog?n=1000", "repositories");
    const allTags = await walk(port, "/v2/tags/list?n=1000", "repositories");
    for (const [what, w] of [["catalog n=100", catalog100], ["tags/list", allTags]] as const) {
      if (w.items !== size) throw new Error(`${what}: ${w.items} repositories, want ${size}`);
    }
    child.kill("SIGTERM");
    await child.status;

    const g0 = performance.now();
    const gc = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", s.main, "gc", "--dry-run", "--storage", "fs", "--data-dir", dataDir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const gcMs = performance.now() - g0;
    const report = new TextDecoder().decode(gc.stdout);
    const marked = Number(/marked (\d+) manifests/.exec(report)?.[1]);
    if (!gc.success || marked !== size) {
      throw new Error(`gc: exit ${gc.code}, ${report}${new TextDecoder().decode(gc.stderr)}`);
    }
    return { startV2, startCatalog, catalog100, catalog1000, allTags, gc: gcMs, gcMarked: marked };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* stopped already */ }
    await child.status;
  }
}

/** GETs until 200 (the process is starting); a new connection each try. */
async function untilOk(port: number, path: string, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 100_000 && !exited; i++) {
    const c = new HttpConn(HOST, port);
    try {
      if ((await c.request("GET", path)).status === 200) return;
    } catch {
      /* not listening yet */
    } finally {
      c.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`no 200 on ${path}${exited ? ": the server exited" : ""}`);
}

/** Follows `Link: <…>; rel="next"` from `path` to the last page, on one connection. */
async function walk(port: number, path: string, field: string): Promise<Walk> {
  const c = new HttpConn(HOST, port);
  const t0 = performance.now();
  let pages = 0;
  let items = 0;
  try {
    for (let next: string | undefined = path; next;) {
      const r = await c.request("GET", next, { maxCollect: 64 << 20 });
      if (r.status !== 200) throw new Error(`${next}: HTTP ${r.status}`);
      pages++;
      items += (JSON.parse(new TextDecoder().decode(r.body))[field] as unknown[]).length;
      const link = r.headers.get("link");
      next = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
      if (next?.startsWith("http")) next = new URL(next).pathname + new URL(next).search;
    }
  } finally {
    c.close();
  }
  return { ms: performance.now() - t0, pages, items };
}

const encoder = new TextEncoder();

/**
 * Writes `count` repositories (`team-XX/service-NNNNNN`), each with one manifest of its own tagged
 * `latest` over a config and a layer they all share, as the registry itself lays them out: blob
 * bytes, layer links, the revision record, the tag, the catalog entry, and the index marker.
 */
export async function seed(dir: string, count: number): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const made = new Set<string>();
  const write = (key: string, data: Uint8Array) => {
    const path = `${dir}/${key}`;
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(parent)) {
      Deno.mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    Deno.writeFileSync(path, data);
  };
  const blob = (bytes: Uint8Array) => {
    const digest = parseDigest(digestOf(bytes))!;
    write(blobPath(digest), bytes);
    return digest;
  };
  const layerBytes = encoder.encode("layer bytes shared by every repository ".repeat(64));
  const configBytes = encoder.encode(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const layer = blob(layerBytes);
  const config = blob(configBytes);
  const empty = new Uint8Array();
  for (let i = 0; i < count; i++) {
    const name = `team-${String(i % 100).padStart(2, "0")}/service-${String(i).padStart(6, "0")}`;
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.value, size: configBytes.length },
      layers: [{ mediaType: OCI_LAYER, digest: layer.value, size: layerBytes.length }],
      annotations: { name },
    }));
    const digest = blob(manifest);
    write(layerLinkPath(name, config), empty);
    write(layerLinkPath(name, layer), empty);
    write(
      revisionLinkPath(name, digest),
      encoder.encode(JSON.stringify({ mediaType: OCI_MANIFEST, size: manifest.length })),
    );
    write(tagPath(name, "latest"), encoder.encode(digest.value));
    write(catalogEntryPath(name), empty);
    // Let the event loop breathe: the bench's own timers and signals.
    if (i % 5000 === 4999) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  write(catalogIndexedPath, empty);
}
