// Owns byte-array helpers shared by the HTTP layer and the drivers.
// No spec section: plumbing for joining chunks and reading streams into reused buffers.

/** Joins chunks into one new array of `size` bytes. */
export function concat(chunks: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Spare read buffers by size: fresh memory costs page faults (and garbage) on every read. */
const spareBuffers = new Map<number, ArrayBuffer[]>();
const MAX_SPARE_BUFFERS = 16;

/**
 * A stream's bytes as views of one reused buffer of `size` bytes, read with a BYOB reader: each
 * view is valid only until the next is asked for (consumers copy or finish with it first). A
 * stream that is not a byte stream is passed through as it is. A failed read cancels the stream.
 * `watch.waitingSince` is when the read now waiting for bytes began (0 between reads). With
 * `readBytes` below `size`, each read asks for at most that many bytes and the buffer is handed on
 * once full (or at the end); otherwise each read's bytes are handed on as they come.
 */
export async function* reusedChunks(
  stream: ReadableStream<Uint8Array>,
  size: number,
  watch?: { waitingSince: number },
  readBytes = size,
): AsyncGenerator<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = stream.getReader({ mode: "byob" });
  } catch {
    yield* stream;
    return;
  }
  const spare = spareBuffers.get(size) ?? [];
  spareBuffers.set(size, spare);
  // Each read detaches the buffer it is given and hands it back in the result.
  let buffer = spare.pop() ?? new ArrayBuffer(size);
  let filled = 0;
  try {
    while (true) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        if (watch) watch.waitingSince = performance.now();
        const room = Math.min(readBytes, size - filled);
        result = await reader.read(new Uint8Array(buffer, filled, room));
      } catch (error) {
        await reader.cancel().catch(() => {});
        throw error;
      } finally {
        if (watch) watch.waitingSince = 0;
      }
      if (result.value) {
        buffer = result.value.buffer as ArrayBuffer;
        filled += result.value.length;
      }
      const full = readBytes >= size || filled === size;
      if (filled > 0 && (full || result.done)) {
        yield new Uint8Array(buffer, 0, filled);
        filled = 0;
      }
      if (result.done || !result.value) return;
    }
  } finally {
    reader.releaseLock();
    const intact = !buffer.detached && buffer.byteLength === size;
    if (intact && spare.length < MAX_SPARE_BUFFERS) spare.push(buffer);
  }
}
