// Owns the ids of sessions ended before their expiry (the web UI's sign-outs), kept in this process.
// No spec section; src/redis/revocations.ts shares them between instances.

export interface Revocations {
  /** Ends session `id`; it is remembered until `expires` (ms since the epoch), when it ends anyway. */
  revoke(id: string, expires: number): Promise<void>;
  isRevoked(id: string): Promise<boolean>;
}

/** Ids remembered at most: past it the first signed out are dropped first. */
export const MAX_REVOKED = 100_000;

/** In memory: `now` is the clock `expires` is read on. */
export function createMemoryRevocations(now: () => number, max = MAX_REVOKED): Revocations {
  // Insertion order is about expiry order: sessions live the same time from their last renewal.
  const revoked = new Map<string, number>();
  return {
    revoke(id, expires) {
      const at = now();
      for (const [old, until] of revoked) {
        if (until <= at || revoked.size >= max) revoked.delete(old);
        else break;
      }
      revoked.set(id, expires);
      return Promise.resolve();
    },
    isRevoked: (id) => Promise.resolve(revoked.has(id)),
  };
}
