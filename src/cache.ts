// Owns a small LRU map bounded by entry count and total bytes, for manifest lookups.
// Keeps hot manifest GET/HEAD off the disk; the writers that change an entry update or evict it.

export interface Lru<V> {
  get(key: string): V | undefined;
  set(key: string, value: V, bytes?: number): void;
  delete(key: string): void;
  /** Drops every entry. */
  clear(): void;
  /** Entries held now. */
  readonly size: number;
}

export function createLru<V>(maxEntries: number, maxBytes = Infinity): Lru<V> {
  const entries = new Map<string, { value: V; bytes: number }>();
  let totalBytes = 0;

  const remove = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    totalBytes -= entry.bytes;
  };

  return {
    get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      // Re-insert: Map order is the recency order.
      entries.delete(key);
      entries.set(key, entry);
      return entry.value;
    },
    set(key, value, bytes = 0) {
      remove(key);
      if (bytes > maxBytes) return;
      entries.set(key, { value, bytes });
      totalBytes += bytes;
      for (const oldest of entries.keys()) {
        if (entries.size <= maxEntries && totalBytes <= maxBytes) break;
        remove(oldest);
      }
    },
    delete: remove,
    clear() {
      entries.clear();
      totalBytes = 0;
    },
    get size() {
      return entries.size;
    },
  };
}
