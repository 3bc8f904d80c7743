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
 * `watch.waitingSince` is when the read now waiting for bytes began (0 between reads).
 *
 * With `readBytes` below `size`, each read asks for at most `readBytes` into a small buffer of its
 * own, and its bytes are gathered into the big one, handed on once full, at the end, or before a
 * failure is thrown (a broken upload keeps what arrived: a failed read takes its buffer with it).
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
  const gathering = readBytes < size;
  // Each read detaches the buffer it is given and hands it back in the result.
  let buffer = takeBuffer(size);
  let scratch = gathering ? takeBuffer(readBytes) : buffer;
  let filled = 0;
  try {
    while (true) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        if (watch) watch.waitingSince = performance.now();
        result = await reader.read(new Uint8Array(scratch, 0, Math.min(readBytes, size - filled)));
      } catch (error) {
        await reader.cancel().catch(() => {});
        if (filled > 0) yield new Uint8Array(buffer, 0, filled);
        throw error;
      } finally {
        if (watch) watch.waitingSince = 0;
      }
      const value = result.value;
      if (value) scratch = value.buffer as ArrayBuffer;
      if (!gathering) {
        buffer = scratch;
        if (value?.length) yield value;
      } else if (value?.length) {
        new Uint8Array(buffer).set(value, filled);
        filled += value.length;
        if (filled === size) {
          yield new Uint8Array(buffer, 0, filled);
          filled = 0;
        }
      }
      if (result.done || !value) break;
    }
    if (filled > 0) yield new Uint8Array(buffer, 0, filled);
  } finally {
    reader.releaseLock();
    giveBuffer(buffer, size);
    if (gathering) giveBuffer(scratch, readBytes);
  }
}

function takeBuffer(size: number): ArrayBuffer {
  return spareBuffers.get(size)?.pop() ?? new ArrayBuffer(size);
}

function giveBuffer(buffer: ArrayBuffer, size: number): void {
  if (buffer.detached || buffer.byteLength !== size) return;
  const spare = spareBuffers.get(size) ?? [];
  spareBuffers.set(size, spare);
  if (spare.length < MAX_SPARE_BUFFERS) spare.push(buffer);
}
