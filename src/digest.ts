// Owns content hashing: streaming SHA-256/512 with node:crypto, computed as bytes flow.
// Implements the digest verification the OCI spec requires of blobs and manifests.

import { createHash, type Hash } from "node:crypto";
import type { DigestAlgorithm } from "./grammar.ts";

export type { Hash };

export function createHasher(algorithm: DigestAlgorithm = "sha256"): Hash {
  return createHash(algorithm);
}

export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

export function finish(hash: Hash, algorithm: DigestAlgorithm): string {
  return `${algorithm}:${hash.digest("hex")}`;
}

/** Hashes a stream to its end. */
export async function digestOfStream(
  stream: ReadableStream<Uint8Array>,
  algorithm: DigestAlgorithm,
): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of stream) hash.update(chunk);
  return finish(hash, algorithm);
}
