// Owns the grammar of repository names, tags and digests, anchored, and digest parsing.
// Implements OCI distribution-spec v1.1 "Pulling manifests" grammar and image-spec descriptor.md.

import { RegistryError } from "./errors.ts";

const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Names longer than this cannot be pushed by clients that cap `host:port/name` at 255. */
export const MAX_NAME_LENGTH = 255;

/** Digest algorithms this registry verifies, with the hex length of their encoded part. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

export interface Digest {
  algorithm: DigestAlgorithm;
  encoded: string;
  /** `algorithm:encoded`, the canonical string. */
  value: string;
}

export function isName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Parses a digest this registry can verify, or returns undefined. */
export function parseDigest(value: string): Digest | undefined {
  const match = DIGEST.exec(value);
  if (!match) return undefined;
  const [, algorithm, encoded] = match;
  if (!Object.hasOwn(DIGEST_ALGORITHMS, algorithm)) return undefined;
  const length = DIGEST_ALGORITHMS[algorithm as DigestAlgorithm];
  if (encoded.length !== length || !/^[a-f0-9]+$/.test(encoded)) return undefined;
  return { algorithm: algorithm as DigestAlgorithm, encoded, value };
}

export function looksLikeDigest(reference: string): boolean {
  return reference.includes(":");
}

export function requireName(name: string): string {
  if (!isName(name)) {
    throw new RegistryError("NAME_INVALID", "invalid repository name", { detail: { name } });
  }
  return name;
}

export function requireDigest(value: string | null): Digest {
  const digest = value === null ? undefined : parseDigest(value);
  if (!digest) {
    throw new RegistryError("DIGEST_INVALID", "invalid or unsupported digest", {
      detail: { digest: value },
    });
  }
  return digest;
}

/** A manifest reference is a tag or a digest, nothing else. */
export function parseReference(reference: string): { tag: string } | { digest: Digest } {
  if (looksLikeDigest(reference)) return { digest: requireDigest(reference) };
  if (!isTag(reference)) {
    throw new RegistryError("TAG_INVALID", "invalid tag", { detail: { tag: reference } });
  }
  return { tag: reference };
}
