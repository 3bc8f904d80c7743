// Trivial servers that mark the machine's ceilings for the bench client:
//  - a plain Deno.serve sink: receives bodies and discards them, serves N
//    bytes from a reused in-memory buffer (/mem/N) or a file stream (/file);
//  - on the same server, repository "durable" (/v2/durable/...): the least a
//    crash-safe registry must do per push, and nothing else (see durablePut);
//  - a raw TCP sink (Deno.listen, no HTTP library): the client's own ceiling.
// Run as a subprocess: deno run -A bench/sink.ts [--file PATH] [--dir DIR]

import { createHash } from "node:crypto";
import { reusedChunks } from "../src/bytes.ts";
// Prints one JSON line {"message":"listening","server":{"port"},"raw":{"port"}}.

const CHUNK = 1 << 20;
const chunk = new Uint8Array(CHUNK).fill(0x5a);

function memStream(size: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (left <= 0) {
        ctrl.close();
        return;
      }
      const n = Math.min(left, CHUNK);
      left -= n;
      // A fresh view of one reused buffer: no new memory per chunk.
      ctrl.enqueue(chunk.subarray(0, n));
    },
  });
}

const arg = (flag: string) => {
  const i = Deno.args.indexOf(flag);
  return i >= 0 ? Deno.args[i + 1] : null;
};
const filePath = arg("--file");
const durableDir = arg("--dir");

const READ = 64 * 1024;
const WRITE = 1 << 20;
const spareWrites: Uint8Array[] = [];

async function syncDir(path: string): Promise<void> {
  using d = Deno.openSync(path, { read: true });
  await d.syncData();
}

/**
 * The registry's push work with nothing else: the body read 64 KiB at a time into a reused
 * buffer, SHA-256 over it, written through a 1 MiB buffer to a new staging file, flushed,
 * renamed into place and its directory flushed; then a second small file (the repository's
 * link, or the tag of a manifest) made durable the same way. No session state, no checks.
 */
async function durablePut(body: ReadableStream<Uint8Array>, kind: string): Promise<void> {
  const dir = durableDir!;
  const hash = createHash("sha256");
  const staged = `${dir}/tmp/${crypto.randomUUID()}`;
  const out = spareWrites.pop() ?? new Uint8Array(WRITE);
  let used = 0;
  {
    using file = Deno.openSync(staged, { write: true, createNew: true });
    const flush = () => {
      for (let o = 0; o < used;) o += file.writeSync(out.subarray(o, used));
      used = 0;
    };
    for await (const value of reusedChunks(body, READ)) { // as the registry reads a body
      hash.update(value);
      for (let o = 0; o < value.length;) {
        const n = Math.min(value.length - o, WRITE - used);
        out.set(value.subarray(o, o + n), used);
        used += n;
        o += n;
        if (used === WRITE) flush();
      }
    }
    flush();
    await file.syncData();
  }
  spareWrites.push(out);
  const digest = hash.digest("hex");
  Deno.renameSync(staged, `${dir}/${kind}/${digest}`);
  await syncDir(`${dir}/${kind}`);
  const second = `${dir}/tmp/${crypto.randomUUID()}`;
  Deno.writeTextFileSync(second, kind === "manifests" ? digest : "");
  if (kind === "manifests") {
    using f = Deno.openSync(second, { read: true, write: true });
    await f.syncData();
  }
  Deno.renameSync(second, `${dir}/${kind === "manifests" ? "tags" : "links"}/${digest}`);
  await syncDir(`${dir}/${kind === "manifests" ? "tags" : "links"}`);
}

if (durableDir) {
  for (const sub of ["tmp", "blobs", "links", "manifests", "tags"]) {
    Deno.mkdirSync(`${durableDir}/${sub}`, { recursive: true });
  }
}

let uploads = 0;
const MANIFEST = new TextEncoder().encode(JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: "sha256:" + "1".repeat(64),
    size: 123,
  },
  layers: [{
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    digest: "sha256:" + "2".repeat(64),
    size: 4096,
  }],
}));
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (req) => {
    const url = new URL(req.url);
    const p = url.pathname;
    if (durableDir && req.body && req.method === "PUT" && p.startsWith("/durable/")) {
      await durablePut(req.body, "blobs");
      return new Response(null, { status: 201, headers: { "Content-Length": "0" } });
    }
    if (durableDir && req.body && req.method === "PUT" && p.startsWith("/v2/durable/manifests/")) {
      await durablePut(req.body, "manifests");
      return new Response(null, { status: 201, headers: { "Content-Length": "0" } });
    }
    if (req.method === "POST") {
      if (req.body) { for await (const _ of req.body) { /* discard */ } }
      const prefix = p.startsWith("/v2/durable/") ? "/durable" : "";
      return new Response(null, {
        status: 202,
        headers: { Location: `${prefix}/upload/${++uploads}`, "Content-Length": "0" },
      });
    }
    if (req.method === "PUT" || req.method === "PATCH") {
      let n = 0;
      if (req.body) { for await (const c of req.body) n += c.length; }
      return new Response(null, {
        status: req.method === "PUT" ? 201 : 202,
        headers: {
          Location: p,
          Range: `0-${Math.max(0, n - 1)}`,
          "Content-Length": "0",
        },
      });
    }
    if (req.method === "GET" && p.startsWith("/mem/")) {
      const size = Number(p.slice(5));
      return new Response(memStream(size), {
        headers: { "Content-Length": String(size) },
      });
    }
    if (req.method === "GET" && p.startsWith("/file") && filePath) {
      const f = await Deno.open(filePath);
      const st = await f.stat();
      return new Response(f.readable, {
        headers: { "Content-Length": String(st.size) },
      });
    }
    if (p === "/manifest") {
      // What a registry's manifest GET/HEAD must at least do: a small JSON body from memory.
      return new Response(req.method === "HEAD" ? null : MANIFEST, {
        headers: {
          "Content-Type": "application/vnd.oci.image.manifest.v1+json",
          "Content-Length": String(MANIFEST.length),
          "Docker-Content-Digest": "sha256:" + "0".repeat(64),
        },
      });
    }
    if (p === "/v2/") return new Response("{}");
    return new Response("not found", { status: 404 });
  },
);

// Raw TCP sink: minimal HTTP/1.1 framing by hand, one reused buffer.
const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const dec = new TextDecoder("latin1");
const enc = new TextEncoder();
const big = new Uint8Array(8 << 20).fill(0x5a);

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  let o = 0;
  while (o < b.length) o += await c.write(o ? b.subarray(o) : b);
}

async function handleRaw(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(8 << 20);
  let have = 0;
  try {
    for (let reqs = 0; reqs < 1e7; reqs++) {
      // read the head
      let end = -1;
      for (let g = 0; end < 0 && g < 1e6; g++) {
        for (let i = 0; i + 3 < have; i++) {
          if (
            buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 &&
            buf[i + 3] === 10
          ) {
            end = i;
            break;
          }
        }
        if (end >= 0) break;
        const n = await c.read(buf.subarray(have));
        if (n === null) return;
        have += n;
      }
      const head = dec.decode(buf.subarray(0, end));
      const [method, path] = head.split(" ", 2);
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      let left = m ? Number(m[1]) : 0;
      let rest = have - (end + 4);
      const inBuf = Math.min(rest, left);
      left -= inBuf;
      rest -= inBuf;
      buf.copyWithin(0, end + 4 + inBuf, have);
      have = rest;
      for (let g = 0; left > 0 && g < 1e9; g++) {
        const n = await c.read(buf.subarray(0, Math.min(left, buf.length)));
        if (n === null) return;
        left -= n;
      }
      if (method === "GET" && path.startsWith("/mem/")) {
        let size = Number(path.slice(5));
        await writeAll(
          c,
          enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`),
        );
        for (let g = 0; size > 0 && g < 1e9; g++) {
          const n = Math.min(size, big.length);
          await writeAll(c, big.subarray(0, n));
          size -= n;
        }
      } else {
        const status = method === "PUT" ? "201 Created" : "202 Accepted";
        await writeAll(
          c,
          enc.encode(
            `HTTP/1.1 ${status}\r\nLocation: /upload/${++uploads}\r\n` +
              `Content-Length: 0\r\n\r\n`,
          ),
        );
      }
    }
  } catch {
    /* client went away */
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

(async () => {
  for await (const c of raw) handleRaw(c);
})();

console.log(JSON.stringify({
  message: "listening",
  server: { port: server.addr.port },
  raw: { port: (raw.addr as Deno.NetAddr).port },
}));

Deno.addSignalListener("SIGTERM", () => {
  server.shutdown();
  raw.close();
  Deno.exit(0);
});
