// Owns the registry's shared state (driver, locks, settings) and the link helpers every API uses.
// Implements the spec's rule that a repository serves only what was pushed or mounted into it.

import { NotFoundError, type PutOptions, type StorageDriver } from "./storage/driver.ts";
import { createLocks, type WithLock } from "./locks.ts";
import { createPins, type Pins, touch } from "./pins.ts";
import type { Hash } from "./digest.ts";
import type { Digest } from "./grammar.ts";
import { blobPath, layerLinkPath } from "./storage/paths.ts";
import { createLru, type Lru } from "./cache.ts";
import { createSessions, type Sessions } from "./sessions.ts";

export interface RegistryOptions {
  driver: StorageDriver;
  /** When false, every DELETE answers 405 UNSUPPORTED. */
  deleteEnabled?: boolean;
  /**
   * Set when other processes write the same storage (several instances on S3): then nothing
   * is cached, since another instance may move a tag or delete a manifest at any time.
   */
  sharedStorage?: boolean;
  /** Upload sessions idle longer (ms) are expired by GC; a signed one that old is unknown. */
  uploadTtl?: number;
}

/** A manifest as GET needs it: its revision record and its exact bytes. */
export interface CachedManifest {
  mediaType: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** Manifest lookups served from memory; only this process writes, and every writer updates it. */
export interface ManifestCache {
  /** `name:tag` → digest. */
  tags: Lru<Digest>;
  /** `name@digest` → manifest. */
  manifests: Lru<CachedManifest>;
}

export interface Registry {
  driver: StorageDriver;
  withLock: WithLock;
  deleteEnabled: boolean;
  /** Running SHA-256 of each upload this process has seen, so a PUT need not re-read the bytes. */
  uploadHashes: Map<string, { hash: Hash; offset: number }>;
  /** Signing and ending of upload sessions (src/sessions.ts). */
  sessions: Sessions;
  cache?: ManifestCache;
  /** What in-flight pushes rely on, so online GC leaves it alone (src/pins.ts). */
  pins: Pins;
}

export const DEFAULT_UPLOAD_TTL = 24 * 60 * 60 * 1000;

export function createRegistry(options: RegistryOptions): Registry {
  return {
    driver: options.driver,
    withLock: createLocks(),
    deleteEnabled: options.deleteEnabled ?? true,
    uploadHashes: new Map(),
    sessions: createSessions(options.driver, options.uploadTtl ?? DEFAULT_UPLOAD_TTL),
    pins: createPins(),
    cache: options.sharedStorage ? undefined : {
      tags: createLru(100_000),
      manifests: createLru(10_000, 64 * 1024 * 1024),
    },
  };
}

/** Resolves to undefined when the driver says the key does not exist. */
export async function orMissing<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

export async function blobSize(registry: Registry, digest: Digest): Promise<number | undefined> {
  return (await orMissing(registry.driver.stat(blobPath(digest))))?.size;
}

/** Size of a blob this repository may serve, or undefined. */
export async function linkedBlobSize(
  registry: Registry,
  name: string,
  digest: Digest,
): Promise<number | undefined> {
  const link = await orMissing(registry.driver.stat(layerLinkPath(name, digest)));
  return link && await blobSize(registry, digest);
}

/**
 * Links a blob into a repository; call it holding the digest's lock. Touched for a running GC
 * pass (src/pins.ts), so the sweep keeps what was just linked.
 */
export async function linkBlob(registry: Registry, name: string, digest: Digest): Promise<void> {
  await registry.driver.put(layerLinkPath(name, digest), new Uint8Array());
  touch(registry.pins, digest);
}

export async function readJson<T>(registry: Registry, key: string): Promise<T | undefined> {
  const bytes = await orMissing(registry.driver.get(key));
  return bytes && JSON.parse(new TextDecoder().decode(bytes)) as T;
}

export function writeJson(
  registry: Registry,
  key: string,
  value: unknown,
  options?: PutOptions,
): Promise<void> {
  return registry.driver.put(key, new TextEncoder().encode(JSON.stringify(value)), options);
}
