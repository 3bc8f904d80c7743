// The bcrypt flood of issue 18 (finding 2): a logged-in user's GET /v2/ latency, quiet and while
// `seq 70 | xargs -P8 curl -u 'u{}:pw'` sends Basic logins with fresh usernames at bcrypt cost 12,
// from one address (as in the issue) or each from its own (127.0.0.2…71: no per-address limit).

import bcrypt from "bcryptjs";
import { HttpConn } from "./http.ts";
import { HOST } from "./servers.ts";

export const FLOOD_COST = 12;
export const FLOOD_USER = "bench";
export const FLOOD_PASSWORD = "bench-password";

/** An htpasswd file with the one legitimate user, at the flood's bcrypt cost. */
export async function writeFloodHtpasswd(path: string): Promise<void> {
  const hash = bcrypt.hashSync(FLOOD_PASSWORD, FLOOD_COST).replace(/^\$2[ab]\$/, "$2y$");
  await Deno.writeTextFile(path, `${FLOOD_USER}:${hash}\n`);
}

export interface FloodResult {
  /** Latencies (ms) of the legitimate user's requests before the flood. */
  quiet: number[];
  /** … and while it runs. */
  flood: number[];
  floodSeconds: number;
  /** The flood's answers by status ("000": curl got no answer). */
  floodStatuses: Record<string, number>;
  /** The legitimate user's answers that were not 200, by status. */
  userRefused: Record<string, number>;
}

export interface FloodOptions {
  quietMs: number;
  logins: number;
  parallel: number;
  /** Pause between the legitimate user's requests: a client, not a load generator. */
  pauseMs: number;
  /** Each login from its own loopback address, so that only the global bound holds them. */
  spread: boolean;
}

export async function measureFlood(port: number, options: FloodOptions): Promise<FloodResult> {
  const c = new HttpConn(HOST, port);
  const headers = { authorization: `Basic ${btoa(`${FLOOD_USER}:${FLOOD_PASSWORD}`)}` };
  const userRefused: Record<string, number> = {};
  const once = async (into: number[]) => {
    const t0 = performance.now();
    const r = await c.request("GET", "/v2/", { headers });
    into.push(performance.now() - t0);
    if (r.status !== 200) userRefused[r.status] = (userRefused[r.status] ?? 0) + 1;
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
  };
  try {
    // The first login pays its bcrypt; the measured ones are cached (where the server caches).
    const warm = await c.request("GET", "/v2/", { headers });
    if (warm.status !== 200) throw new Error(`the legitimate user got ${warm.status}`);
    const quiet: number[] = [];
    for (const until = performance.now() + options.quietMs; performance.now() < until;) {
      await once(quiet);
    }
    // Logins u2…u71 from 127.0.0.2…71 when spread: Linux routes all of 127/8 to loopback.
    const range = options.spread ? `2 ${options.logins + 1}` : String(options.logins);
    const from = options.spread ? "--interface 127.0.0.{} " : "";
    const script = `seq ${range} | xargs -P${options.parallel} -I{} curl -so/dev/null ` +
      `-w '%{http_code}\\n' ${from}-u 'u{}:pw' http://${HOST}:${port}/v2/`;
    const t0 = performance.now();
    const child = new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).spawn();
    let running = true;
    const output = child.output().finally(() => running = false);
    const flood: number[] = [];
    while (running) await once(flood);
    const floodSeconds = (performance.now() - t0) / 1000;
    const floodStatuses: Record<string, number> = {};
    for (const code of new TextDecoder().decode((await output).stdout).split("\n")) {
      if (code) floodStatuses[code] = (floodStatuses[code] ?? 0) + 1;
    }
    return { quiet, flood, floodSeconds, floodStatuses, userRefused };
  } finally {
    c.close();
  }
}

/** The q-quantile (0…1) of latencies, nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
