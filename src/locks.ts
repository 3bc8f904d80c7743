// Owns per-key promise-chain locks: work on one key runs one at a time, in arrival order.
// Guards what must not interleave inside one process (a tag and its deletion, one upload's PATCHes).

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
