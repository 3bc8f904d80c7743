// Owns the store's shared state (guarded driver, locks, pins, caches, sessions) and its JSON I/O.
// Every store operation and maintenance pass works on one StoreState; nothing lives in module globals.

import { NotFoundError, type PutOptions, type StorageDriver } from "../storage/driver.ts";
import { createLru, type Lru } from "../cache.ts";
import type { Hash } from "../digest.ts";
import { type CachedManifest, createMemoryCache, createNoCache, type StoreCache } from "./cache.ts";
import { guardDriver } from "./guard.ts";
import { createLocks, type WithLock } from "./locks.ts";
import { createPins, type Pins } from "./pins.ts";
import { createSessions, type Sessions } from "./sessions.ts";

export type { CachedManifest };

export interface StoreOptions {
  driver: StorageDriver;
  /** When false, every delete answers 405 UNSUPPORTED. */
  deleteEnabled?: boolean;
  /**
   * Set when other processes write the same storage (several instances on S3): then, unless
   * `coordination` says how they share one, nothing is cached, since another instance may move
   * a tag or delete a manifest at any time, and locks and pins are this process's only.
   */
  sharedStorage?: boolean;
  /** Cache, locks, pins and GC turns shared by every instance (src/redis/shared.ts). */
  coordination?: Coordination;
  /** Upload sessions idle longer (ms) are expired; a signed one that old is unknown. */
  uploadTtl?: number;
  /** Record when each tag and manifest is pulled (src/store/pulls.ts); off by default. */
  recordPulls?: boolean;
  /** Blob GETs answered with a URL where storage serves the bytes (a presigned S3 URL). */
  redirect?: RedirectOptions;
}

/**
 * What several instances share instead of their memory, all chosen together: the lookup cache,
 * the locks, the pins and whose turn the scheduled GC pass is.
 */
export interface Coordination {
  cache: StoreCache;
  withLock: WithLock;
  pins: Pins;
  /** Whether this instance runs the scheduled GC pass now (one instance in an interval). */
  gcTurn(interval: number): Promise<boolean>;
}

export interface RedirectOptions {
  /** Blobs smaller than this (bytes) are served directly. */
  minSize: number;
  /** How long a redirect URL is valid (seconds). */
  expiresIn: number;
}

/** The running SHA-256 of an upload this process received, so its PUT need not re-read it. */
export interface UploadHash {
  hash: Hash;
  offset: number;
}

export interface StoreState {
  /** Failures other than "not found" come out of it as UNAVAILABLE (src/store/guard.ts). */
  driver: StorageDriver;
  withLock: WithLock;
  /** What in-flight pushes rely on, so online GC leaves it alone (src/store/pins.ts). */
  pins: Pins;
  /** Lookups of tags, manifests, blobs and links (src/store/cache.ts). */
  cache: StoreCache;
  /** Whether this instance runs the scheduled GC pass now. */
  gcTurn(interval: number): Promise<boolean>;
  /** Other processes write the same storage. */
  sharedStorage: boolean;
  redirect?: RedirectOptions;
  deleteEnabled: boolean;
  /** Digests whose stored bytes this process hashed in full and found right. */
  verified: Lru<true>;
  /** First-read checks in progress: concurrent first pulls of one blob share one hash. */
  verifying: Map<string, Promise<boolean>>;
  /** Bounded: an evicted or lost hash only costs a re-read of the bytes at the upload's end. */
  uploadHashes: Lru<UploadHash>;
  /** Signing and ending of upload sessions (src/store/sessions.ts). */
  sessions: Sessions;
  uploadTtl: number;
  /** The catalog's names, sorted, once listed (src/store/catalog.ts), and when. */
  catalog?: Promise<string[]>;
  catalogListedAt: number;
  /** Pulls not yet written, when they are recorded (src/store/pulls.ts). */
  pulls?: Pulls;
}

/** Milliseconds since the epoch of the last pull, by tag and by manifest digest. */
export interface PullTimes {
  tags: Record<string, number>;
  manifests: Record<string, number>;
}

/** Pulls recorded in memory until `flushPulls` writes them (src/store/pulls.ts). */
export interface Pulls {
  /** Repository → pulls not yet written. */
  pending: Map<string, PullTimes>;
  /** When recording began (`_pulls/_since`), once this process read or wrote it. */
  since?: number;
}

export const DEFAULT_UPLOAD_TTL = 24 * 60 * 60 * 1000;
/** Blobs remembered as verified; past it the least recently pulled is checked again. */
const MAX_VERIFIED = 200_000;
/**
 * Uploads whose running hash is kept (the least recently written goes first): enough for every
 * upload in flight; one evicted costs a re-read of its bytes at its end, never a wrong digest.
 */
const MAX_UPLOAD_HASHES = 1024;

export function createState(options: StoreOptions): StoreState {
  const uploadTtl = options.uploadTtl ?? DEFAULT_UPLOAD_TTL;
  const driver = guardDriver(options.driver);
  const sharedStorage = options.sharedStorage ?? false;
  const coordination = options.coordination ?? {
    cache: sharedStorage ? createNoCache() : createMemoryCache(),
    withLock: createLocks(),
    pins: createPins(),
    gcTurn: () => Promise.resolve(true),
  };
  return {
    driver,
    ...coordination,
    sharedStorage,
    redirect: options.redirect,
    deleteEnabled: options.deleteEnabled ?? true,
    verified: createLru(MAX_VERIFIED),
    verifying: new Map(),
    uploadHashes: createLru(MAX_UPLOAD_HASHES),
    sessions: createSessions(driver, uploadTtl),
    uploadTtl,
    catalogListedAt: 0,
    pulls: options.recordPulls ? { pending: new Map() } : undefined,
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

export async function readJson<T>(state: StoreState, key: string): Promise<T | undefined> {
  const bytes = await orMissing(state.driver.get(key));
  return bytes && JSON.parse(new TextDecoder().decode(bytes)) as T;
}

export function writeJson(
  state: StoreState,
  key: string,
  value: unknown,
  options?: PutOptions,
): Promise<void> {
  return state.driver.put(key, new TextEncoder().encode(JSON.stringify(value)), options);
}
