// Unit tests of src/bytes.ts: reusedChunks hands on a byte stream's bytes in order, each read's
// as it comes, or gathered from small reads into full buffers (kept when a read fails).

import { concat, reusedChunks } from "../src/bytes.ts";
import { assertEquals } from "./helpers.ts";

/** A byte stream of `data` that serves each read at most `piece` bytes, recording what was asked. */
function byteStream(data: Uint8Array, piece: number, asked: number[]) {
  let offset = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array;
      asked.push(view.byteLength);
      if (offset === data.length) {
        controller.close();
        request.respond(0);
        return;
      }
      const n = Math.min(piece, view.byteLength, data.length - offset);
      view.set(data.subarray(offset, offset + n));
      offset += n;
      request.respond(n);
    },
  });
}

const data = Uint8Array.from({ length: 10_000 }, (_, i) => i * 7);

Deno.test("reusedChunks: each read's bytes as they come, read into the whole buffer", async () => {
  const asked: number[] = [];
  const chunks: Uint8Array[] = [];
  for await (const chunk of reusedChunks(byteStream(data, 3000, asked), 4096)) {
    chunks.push(chunk.slice());
  }
  assertEquals(chunks.map((c) => c.length), [3000, 3000, 3000, 1000]);
  assertEquals(concat(chunks, data.length), data);
  assertEquals(asked.every((n) => n === 4096), true);
});

Deno.test("reusedChunks: small reads gathered into full buffers, the rest at the end", async () => {
  const asked: number[] = [];
  const chunks: Uint8Array[] = [];
  for await (const chunk of reusedChunks(byteStream(data, 3000, asked), 4096, undefined, 1024)) {
    chunks.push(chunk.slice());
  }
  assertEquals(chunks.map((c) => c.length), [4096, 4096, 1808]);
  assertEquals(concat(chunks, data.length), data);
  assertEquals(Math.max(...asked), 1024, "no read asks for more than readBytes");
});

Deno.test("reusedChunks: gathered bytes are handed on before a failed read's error", async () => {
  let served = 0;
  const failing = new ReadableStream({
    type: "bytes",
    pull(controller: ReadableByteStreamController) {
      if (served === 3000) return controller.error(new Error("connection reset"));
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array;
      const n = Math.min(1000, view.byteLength);
      view.set(data.subarray(served, served + n));
      served += n;
      request.respond(n);
    },
  });
  const chunks: Uint8Array[] = [];
  let failure: unknown;
  try {
    for await (const chunk of reusedChunks(failing, 4096, undefined, 1024)) {
      chunks.push(chunk.slice());
    }
  } catch (error) {
    failure = error;
  }
  assertEquals(String(failure), "Error: connection reset");
  assertEquals(concat(chunks, 3000), data.subarray(0, 3000));
});
