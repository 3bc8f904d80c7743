// Owns per-key promise-chain locks and the names of the keys the store locks.
// Orders what must not interleave inside one process (a tag and its deletion, one upload's PATCHes).

import type { Digest } from "../grammar.ts";

export type WithLock = <T>(key: string, work: () => Promise<T>) => Promise<T>;

export function createLocks(): WithLock {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const current = previous.then(work);
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
