// Owns byte-array helpers shared by the HTTP layer and the drivers.
// No spec section: plumbing for reading small bodies and objects whole.

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
