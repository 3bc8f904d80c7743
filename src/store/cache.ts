// Owns the seam of the store's lookup cache: what tag, manifest, blob and link lookups read from
// storage, kept coherent with the writers that change it (here in process; shared: src/redis/).

import { createLru, type Lru } from "../cache.ts";
import type { Digest } from "../grammar.ts";

/*
 * Readers go through `read`: the cached answer, else storage's (`load`), kept for the next reader
 * unless a write to that key began while it was loaded. Writers wrap the storage write in
 * `write`: readers stop trusting the key before the write starts, and see its outcome once it
 * is done. So a reader never keeps an answer older than a write that had already begun, and after
 * a write was answered every reader sees it. Decisions that guard data (a reference check under
 * its lock, a GC sweep) read storage itself, never the cache: a cache is only a faster answer.
 */

/** A manifest as GET needs it: its media type and its exact bytes. */
export interface CachedManifest {
  mediaType: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** What each kind of key maps to: `name:tag`, `name@digest`, `digest`, `name@digest`. */
export interface CachedValues {
  /** The digest a tag names. */
  tag: Digest;
  /** A manifest revision of a repository, with its bytes. */
  manifest: CachedManifest;
  /** The stored size of a blob. */
  blob: number;
  /** The repository links the blob (may serve it). */
  link: true;
}

export type CacheKind = keyof CachedValues;
/** What storage says for a key: the value, or null when there is none. */
export type Found<K extends CacheKind> = CachedValues[K] | null;

/** Counters, for logs and metrics: cheap to read at any time. */
export interface CacheStats {
  hits: Record<CacheKind, number>;
  misses: Record<CacheKind, number>;
  /** Lookups and updates that failed (shared cache unreachable): served from storage. */
  failures: number;
}

/** Counters at zero. */
export function newCacheStats(): CacheStats {
  const zero = () => ({ tag: 0, manifest: 0, blob: 0, link: 0 });
  return { hits: zero(), misses: zero(), failures: 0 };
}

export interface StoreCache {
  /** "none", "memory" or "redis": what the cache is, for logs. */
  readonly kind: string;
  /** The cached answer, else `load`'s, kept unless a write to the key began meanwhile. */
  read<K extends CacheKind>(
    kind: K,
    key: string,
    load: () => Promise<Found<K>>,
  ): Found<K> | Promise<Found<K>>;
  /**
   * Runs `work`, a storage write after which the key's answer is `after` (undefined: unknown,
   * read storage again). The cache is updated in the order storage is written, and `work`'s
   * failure leaves the key to be read again.
   */
  write<K extends CacheKind, T>(
    kind: K,
    key: string,
    work: () => Promise<T>,
    after?: Found<K>,
  ): Promise<T>;
  /** Forgets everything (a quarantined blob may be any repository's manifest). */
  clear(): Promise<void>;
  readonly stats: CacheStats;
}

/** No cache: every lookup reads storage (several processes write it, and nothing coordinates). */
export function createNoCache(): StoreCache {
  const stats = newCacheStats();
  return {
    kind: "none",
    read: (kind, _key, load) => {
      stats.misses[kind]++;
      return load();
    },
    write: (_kind, _key, work) => work(),
    clear: () => Promise.resolve(),
    stats,
  };
}

/**
 * Tags and manifests in this process's memory, for storage only this process writes. Blob and
 * link lookups are not kept: on a local disk they cost a stat.
 */
export function createMemoryCache(
  limits = { tags: 100_000, manifests: 10_000, manifestBytes: 64 * 1024 * 1024 },
): StoreCache {
  const stats = newCacheStats();
  const lrus: { [K in CacheKind]?: Lru<CachedValues[K]> } = {
    tag: createLru(limits.tags),
    manifest: createLru(limits.manifests, limits.manifestBytes),
  };
  /** Bumped when a write starts and ends: a load that overlapped one keeps nothing. */
  let generation = 0;
  /** Writes in progress per key (concurrent ones leave the key to be read again). */
  const writing = new Map<string, number>();
  const sizeOf = (value: unknown) => (value as CachedManifest | null)?.bytes?.length ?? 0;

  return {
    kind: "memory",
    read<K extends CacheKind>(kind: K, key: string, load: () => Promise<Found<K>>) {
      const lru = lrus[kind] as Lru<CachedValues[K]> | undefined;
      const cached = lru?.get(key);
      if (cached !== undefined) {
        stats.hits[kind]++;
        return cached;
      }
      stats.misses[kind]++;
      if (!lru) return load();
      const before = generation;
      return load().then((found) => {
        if (found !== null && generation === before) lru.set(key, found, sizeOf(found));
        return found;
      });
    },
    async write<K extends CacheKind, T>(
      kind: K,
      key: string,
      work: () => Promise<T>,
      after?: Found<K>,
    ) {
      const lru = lrus[kind] as Lru<CachedValues[K]> | undefined;
      if (!lru) return work();
      const id = `${kind}:${key}`;
      writing.set(id, (writing.get(id) ?? 0) + 1);
      generation++;
      let ok = false;
      try {
        const result = await work();
        ok = true;
        return result;
      } finally {
        const others = writing.get(id)! - 1;
        if (others > 0) writing.set(id, others);
        else writing.delete(id);
        generation++;
        if (ok && others === 0 && after !== undefined && after !== null) {
          lru.set(key, after, sizeOf(after));
        } else lru.delete(key);
      }
    },
    clear() {
      generation++;
      for (const lru of Object.values(lrus)) lru.clear();
      return Promise.resolve();
    },
    stats,
  };
}
