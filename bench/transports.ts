// The HTTP servers a Deno registry could stand on, as bare transports with one trivial handler
// (bodies read 64 KiB at a time and dropped, bytes served from memory), measured round by round:
//  - deno: Deno.serve (no timeouts, no connection cap; its serve loop ends when an accept fails);
//  - conn: Deno.listen and Deno's HTTP server per connection, as src/listen.ts does;
//  - node: node:http's Server (headersTimeout, keepAliveTimeout, maxConnections), adapted to the
//    registry's (Request) => Response interface.
//
//   deno run -A bench/transports.ts [--rounds N]      (the servers are this file with --serve)

import http from "node:http";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { reusedChunks } from "../src/bytes.ts";
import { HttpConn } from "./http.ts";
import { MiB } from "./oci.ts";

type Handler = (request: Request) => Promise<Response>;
const KINDS = ["deno", "conn", "node"] as const;
const chunk = new Uint8Array(MiB).fill(0x5a);
const small = new TextEncoder().encode(
  JSON.stringify({ schemaVersion: 2, layers: [], x: "y".repeat(400) }),
);

const handler: Handler = async (request) => {
  if (request.body) {
    let n = 0;
    for await (const view of reusedChunks(request.body, 64 * 1024)) n += view.length;
    return new Response(null, { status: 201, headers: { "x-bytes": String(n) } });
  }
  const size = Number(new URL(request.url).searchParams.get("size") ?? 0);
  if (size === 0) {
    const body = request.method === "HEAD" ? null : small;
    return new Response(body, { headers: { "content-length": String(small.length) } });
  }
  let left = size;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const n = Math.min(left, MiB);
      left -= n;
      controller.enqueue(chunk.subarray(0, n));
    },
  });
  return new Response(stream, { headers: { "content-length": String(size) } });
};

function serve(kind: string): void {
  const listening = (port: number) => console.log(JSON.stringify({ port }));
  if (kind === "deno") {
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (a) => listening(a.port) }, handler);
  } else if (kind === "conn") {
    const key = Reflect.get(Deno, "internal") as symbol;
    const serveOn = Reflect.get(Deno, key).serveHttpOnConnection;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    listening(listener.addr.port);
    (async () => {
      for await (const conn of listener) {
        serveOn(
          conn,
          new AbortController().signal,
          handler,
          () => new Response(null, { status: 500 }),
          () => {},
        );
      }
    })();
  } else {
    const server = http.createServer(
      { headersTimeout: 30_000, keepAliveTimeout: 60_000 },
      async (req, res) => {
        const headers = new Headers();
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
        }
        const body = req.method === "GET" || req.method === "HEAD"
          ? null
          : Readable.toWeb(req) as ReadableStream<Uint8Array>;
        const request = new Request(
          `http://${req.headers.host}${req.url}`,
          { method: req.method, headers, body, duplex: "half" } as RequestInit,
        );
        const response = await handler(request);
        res.writeHead(response.status, Object.fromEntries(response.headers));
        if (response.body) {
          for await (const part of response.body) {
            if (!res.write(part)) {
              await new Promise((resolve) => res.once("drain", resolve));
            }
          }
        }
        res.end();
      },
    );
    server.listen(0, "127.0.0.1", () => listening((server.address() as { port: number }).port));
  }
}

async function hey(port: number, method: string, conc: number): Promise<number> {
  const out = await new Deno.Command("/usr/bin/hey", {
    args: ["-z", "3s", "-c", String(conc), "-m", method, `http://127.0.0.1:${port}/`],
    stdout: "piped",
  }).output();
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
}

async function transfer(port: number, push: boolean): Promise<number> {
  const size = 256 * MiB;
  const c = new HttpConn("127.0.0.1", port);
  const t = performance.now();
  const r = push
    ? await c.request("PUT", "/", { body: { pattern: chunk, offset: 0, length: size } })
    : await c.request("GET", `/?size=${size}`, { sink: new Uint8Array(8 * MiB) });
  c.close();
  if (r.status !== (push ? 201 : 200)) throw new Error(`status ${r.status}`);
  return size / 1e6 / ((performance.now() - t) / 1000);
}

const { values: opt } = parseArgs({
  args: Deno.args,
  options: { serve: { type: "string" }, rounds: { type: "string" } },
});
if (opt.serve) {
  serve(opt.serve);
} else {
  const children = await Promise.all(KINDS.map(async (kind) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--serve", kind],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { port } = JSON.parse((await reader.read()).value!);
    return { kind, child, port: port as number };
  }));
  const figures: Record<string, (port: number) => Promise<number>> = {
    "push 256 MiB (MB/s)": (port) => transfer(port, true),
    "pull 256 MiB (MB/s)": (port) => transfer(port, false),
    "HEAD c=1 (req/s)": (port) => hey(port, "HEAD", 1),
    "GET c=1 (req/s)": (port) => hey(port, "GET", 1),
    "HEAD c=64 (req/s)": (port) => hey(port, "HEAD", 64),
    "GET c=64 (req/s)": (port) => hey(port, "GET", 64),
  };
  const results: Record<string, Record<string, number[]>> = {};
  const rounds = Number(opt.rounds ?? 5);
  for (let r = 0; r < rounds; r++) {
    for (const [name, measure] of Object.entries(figures)) {
      // Each figure on every transport back to back, in a rotating order.
      for (let k = 0; k < children.length; k++) {
        const { kind, port } = children[(k + r) % children.length];
        ((results[name] ??= {})[kind] ??= []).push(await measure(port));
      }
    }
    console.error(`[transports] round ${r + 1}/${rounds}`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `medians of ${rounds} rounds\n\n| figure | ${KINDS.join(" | ")} |\n|---|---|---|---|`,
  );
  for (const [name, byKind] of Object.entries(results)) {
    console.log(`| ${name} | ${KINDS.map((k) => median(byKind[k]).toFixed(0)).join(" | ")} |`);
  }
  for (const { child } of children) child.kill();
  await Promise.all(children.map(({ child }) => child.status));
}
