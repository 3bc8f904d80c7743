// Owns checked blob reads: a full pull is hashed on the way, and bad bytes never finish cleanly.
// Implements issue 6's rule that serving a blob never returns bytes that do not match its digest.

import { createHasher, finish } from "./digest.ts";
import type { Digest } from "./grammar.ts";

/** Digests whose bytes this process has hashed in full and found right, per registry. */
const verifiedSets = new WeakMap<object, Set<string>>();
const MAX_VERIFIED = 200_000;

/** The registry's verified set; cleared when it grows past a bound (then blobs are re-checked). */
export function verifiedBlobs(
  registry: object,
): { has(d: string): boolean; add(d: string): void; delete(d: string): void } {
  let set = verifiedSets.get(registry);
  if (!set) verifiedSets.set(registry, set = new Set());
  const verified = set;
  return {
    has: (digest) => verified.has(digest),
    add: (digest) => {
      if (verified.size >= MAX_VERIFIED) verified.clear();
      verified.add(digest);
    },
    delete: (digest) => verified.delete(digest),
  };
}

/** Raised into the response stream when the bytes read do not hash to the digest. */
export class DigestMismatchError extends Error {
  constructor(expected: string, actual: string) {
    super(`blob ${expected} hashes to ${actual}`);
    this.name = "DigestMismatchError";
  }
}

/**
 * Passes a blob's bytes through while hashing them. The last chunk is held back until the hash
 * is checked: on a mismatch `onMismatch` runs and the stream errors instead, so a client never
 * receives all `Content-Length` bytes of a corrupt blob (the transfer breaks).
 */
export function verifyingStream(
  source: ReadableStream<Uint8Array>,
  digest: Digest,
  onMismatch: (actual: string) => Promise<void>,
  onVerified?: () => void,
): ReadableStream<Uint8Array> {
  const hash = createHasher(digest.algorithm);
  const reader = source.getReader();
  let held: Uint8Array | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hash.update(value);
        const previous = held;
        held = value;
        if (previous) return controller.enqueue(previous);
      }
      const actual = finish(hash, digest.algorithm);
      if (actual !== digest.value) {
        await onMismatch(actual);
        controller.error(new DigestMismatchError(digest.value, actual));
        return;
      }
      onVerified?.();
      if (held) controller.enqueue(held);
      controller.close();
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
