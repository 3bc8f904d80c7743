// The least a pull-through cache does on a miss, and nothing more: the ceiling bench/mirror.ts
// sets its cold pulls against. Every GET is fetched from the upstream and streamed back; with
// `--store` a blob's bytes are also SHA-256 hashed and written to a file flushed at the end.
// No routing, tokens, flights, locks or registry layout.
//
//   deno run -A bench/relay.ts --upstream URL --dir DIR [--store]
// Prints one JSON line {"message":"listening","server":{"port"}} once it listens.

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    upstream: { type: "string" },
    dir: { type: "string" },
    store: { type: "boolean", default: false },
  },
});
const upstream = values.upstream!;
const dir = values.dir!;
Deno.mkdirSync(dir, { recursive: true });
/** Reads of the upstream's body gather this much (the mirror's own flights read 1 MiB too). */
const CHUNK = 1024 * 1024;

/** The body in chunks of up to CHUNK bytes, each in a fresh buffer (BYOB reads). */
async function* chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader({ mode: "byob" });
  while (true) {
    const { done, value } = await reader.read(new Uint8Array(CHUNK));
    if (value?.length) yield value;
    if (done) return;
  }
}

/** Passes chunks through, hashing each and writing it to a new file, flushed at the end. */
async function* stored(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const hash = createHash("sha256");
  using file = Deno.openSync(`${dir}/${crypto.randomUUID()}`, { write: true, createNew: true });
  for await (const chunk of source) {
    hash.update(chunk);
    for (let n = 0; n < chunk.length;) n += file.writeSync(chunk.subarray(n));
    yield chunk;
  }
  await file.syncData();
  hash.digest("hex"); // computed as a cache must; a relay has nothing to compare it with
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ message: "listening", server: { port } })),
}, async (request) => {
  const { pathname } = new URL(request.url);
  const accept = request.headers.get("accept");
  const response = await fetch(`${upstream}${pathname}`, {
    headers: accept ? { accept } : {},
  });
  const headers = new Headers();
  for (const name of ["content-type", "content-length", "docker-content-digest"]) {
    const value = response.headers.get(name);
    if (value) headers.set(name, value);
  }
  if (!response.body || !values.store || !pathname.includes("/blobs/")) {
    return new Response(response.body, { status: response.status, headers });
  }
  const source = stored(chunks(response.body));
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await source.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: response.status, headers });
});
