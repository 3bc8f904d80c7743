// End-to-end memory bound: a 1 GiB blob pushed (a streamed, chunked PATCH as docker sends it,
// then PUT) and pulled through a registry subprocess on fs storage keeps its RSS under 150 MiB.

import { createHash } from "node:crypto";
import {
  assert,
  assertEquals,
  procStatusBytes,
  spawnRegistry,
  tempDir,
  withDigest,
} from "../helpers.ts";

const MiB = 1024 * 1024;
const TOTAL = 1024 * MiB;
const LIMIT = 150 * MiB;

/** One buffer, never mutated; chunk i is a 1 MiB window at i mod 4096, so chunks differ. */
const base = new Uint8Array(MiB + 4096);
crypto.getRandomValues(base.subarray(0, 65536));
for (let i = 65536; i < base.length; i++) base[i] = base[i - 65536] ^ (i & 0xff);
function* windows(total: number): Generator<Uint8Array> {
  for (let i = 0; i < total / MiB; i++) yield base.subarray(i % 4096, (i % 4096) + MiB);
}

/**
 * PATCH with `Transfer-Encoding: chunked` over a raw socket, one frame per generator chunk:
 * docker's streamed layer upload, with nothing between the generator and the socket (fetch
 * would re-frame the body in 64 KiB pieces and keep its own buffers in this process).
 */
async function chunkedPatch(url: string, chunks: Iterable<Uint8Array>) {
  const target = new URL(url);
  const conn = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
  const encoder = new TextEncoder();
  const write = async (data: Uint8Array) => {
    for (let n = 0; n < data.length;) n += await conn.write(data.subarray(n));
  };
  await write(encoder.encode(
    `PATCH ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
      "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n" +
      "Connection: close\r\n\r\n",
  ));
  for (const chunk of chunks) {
    await write(encoder.encode(`${chunk.length.toString(16)}\r\n`));
    await write(chunk);
    await write(encoder.encode("\r\n"));
  }
  await write(encoder.encode("0\r\n\r\n"));
  const response = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  const head = response.slice(0, response.indexOf("\r\n\r\n"));
  return {
    status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]),
    range: /^range: *(.*)$/im.exec(head)?.[1],
  };
}

Deno.test({
  name: "fs: a 1 GiB blob pushed and pulled keeps the server's RSS under 150 MiB",
  ignore: Deno.build.os !== "linux", // reads /proc
  sanitizeResources: false, // the raw socket's readable closes with the connection
  async fn() {
    await using dir = await tempDir("registry-1gib-");
    await using registry = await spawnRegistry(["--storage", "fs", "--data-dir", dir.path]);
    const pid = registry.pid;
    const idle = procStatusBytes(pid, "VmRSS");

    const expected = createHash("sha256");
    for (const chunk of windows(TOTAL)) expected.update(chunk);
    const digest = `sha256:${expected.digest("hex")}`;

    let sampled = 0;
    const sampler = setInterval(() => {
      try {
        sampled = Math.max(sampled, procStatusBytes(pid, "VmRSS"));
      } catch { /* exited */ }
    }, 100);
    const started = performance.now();
    let pushSeconds = 0;
    let pushPeak = 0;
    try {
      const start = await fetch(`${registry.url}/v2/big/blobs/uploads/`, { method: "POST" });
      await start.body?.cancel();
      assertEquals(start.status, 202);
      const location = start.headers.get("location")!;

      const patch = await chunkedPatch(location, windows(TOTAL));
      assertEquals([patch.status, patch.range], [202, `0-${TOTAL - 1}`]);
      const put = await fetch(withDigest(location, digest), { method: "PUT" });
      await put.body?.cancel();
      assertEquals(put.status, 201);
      pushSeconds = (performance.now() - started) / 1000;
      pushPeak = sampled;
      sampled = 0;

      const head = await fetch(`${registry.url}/v2/big/blobs/${digest}`, { method: "HEAD" });
      assertEquals(head.headers.get("content-length"), String(TOTAL));
      const get = await fetch(`${registry.url}/v2/big/blobs/${digest}`);
      assertEquals(get.status, 200);
      const hash = createHash("sha256");
      let received = 0;
      for await (const chunk of get.body!) {
        hash.update(chunk);
        received += chunk.length;
      }
      assertEquals(received, TOTAL);
      assertEquals(`sha256:${hash.digest("hex")}`, digest, "pulled bytes verify");
    } finally {
      clearInterval(sampler);
    }
    const peak = procStatusBytes(pid, "VmHWM");
    const mib = (n: number) => (n / MiB).toFixed(1);
    console.log(
      `1 GiB: push ${pushSeconds.toFixed(1)} s, total ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s; server RSS idle ${mib(idle)} MiB, sampled max ${mib(pushPeak)} MiB pushing, ${
        mib(sampled)
      } MiB pulling, VmHWM ${mib(peak)} MiB`,
    );
    assert(sampled > 0 && pushPeak > 0, "RSS was sampled");
    assert(peak < LIMIT, `server peak RSS ${mib(peak)} MiB is not under 150 MiB`);
  },
});
