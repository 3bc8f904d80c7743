// Owns content hashing: streaming SHA-256/512 with node:crypto, computed as bytes flow.
// Implements the digest verification the OCI spec requires of blobs and manifests.

import { createHash, type Hash } from "node:crypto";
import type { DigestAlgorithm } from "./grammar.ts";
import { reusedChunks } from "./bytes.ts";

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

/**
 * Hashes a stream to its end. Byte streams (files) are read into one reused 1 MiB buffer, so
 * hashing a 1 GiB blob leaves no garbage behind (fresh 64 KiB chunks grew RSS by tens of MiB
 * before V8 collected them).
 */
export async function digestOfStream(
  stream: ReadableStream<Uint8Array>,
  algorithm: DigestAlgorithm,
): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of reusedChunks(stream, 1024 * 1024)) hash.update(chunk);
  return finish(hash, algorithm);
}
