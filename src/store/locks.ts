// Owns per-key promise-chain locks and the names of the keys the store locks.
// Orders what must not interleave inside one process (a tag and its deletion, one upload's PATCHes).

import type { Digest } from "../grammar.ts";

/**
 * The lock a piece of work holds. A lock shared by several instances (src/redis/locks.ts) is a
 * lease: `confirm` rejects once it was lost (its holder stalled past the lease), and work that
 * is about to change storage irrevocably (a tag, a sweep's delete) confirms it first.
 */
export interface Held {
  confirm(): Promise<void>;
}

export type WithLock = <T>(key: string, work: (held: Held) => Promise<T>) => Promise<T>;

/** A lock of this process never goes away while its work runs. */
export const HELD: Held = { confirm: () => Promise.resolve() };

export function createLocks(): WithLock {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(key: string, work: (held: Held) => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const current = previous.then(() => work(HELD));
    const tail = current.catch(() => {});
    tails.set(key, tail);
    try {
      return await current;
    } finally {
      // The last waiter cleans up so the map does not grow with every key ever locked.
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/** A push committing to a digest and a GC sweep deleting it (src/store/pins.ts). */
export const digestLock = (digest: Digest) => `digest:${digest.value}`;
/** A repository's tags: moves, deletes and deletes by digest of what tags name. */
export const tagsLock = (name: string) => `tags:${name}`;
/** One manifest revision of a repository: its record, referrer entry and cache entry. */
export const manifestLock = (name: string, digest: Digest) => `manifest:${name}@${digest.value}`;
/** One upload session's chunks, commit, cancel and expiry. */
export const uploadLock = (uuid: string) => `upload:${uuid}`;
/** One GC pass at a time: `touched` in src/store/pins.ts belongs to the running pass. */
export const GC_LOCK = "gc:run";
