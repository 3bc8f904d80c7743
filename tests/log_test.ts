// Logging: lines written in batches reach the output whole and in order, and close() flushes.

import { batchedWrites } from "../src/log.ts";
import { assertEquals } from "./helpers.ts";

Deno.test("batched log writes: one write per turn, every line in order, flushed on close", async () => {
  const writes: string[] = [];
  const out = {
    write(p: Uint8Array) {
      const n = Math.min(p.length, 7); // short writes must be continued
      writes.push(new TextDecoder().decode(p.subarray(0, n)));
      return Promise.resolve(n);
    },
  };
  const writer = batchedWrites(out).getWriter();
  const lines = Array.from({ length: 50 }, (_, i) => `{"n":${i}}\n`);
  for (const line of lines) await writer.write(new TextEncoder().encode(line));
  await writer.close();
  assertEquals(writes.join(""), lines.join(""));
  assertEquals(
    writes.length,
    Math.ceil(lines.join("").length / 7),
    "one batch, cut by short writes",
  );
});
