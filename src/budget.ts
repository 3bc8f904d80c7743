// Owns the byte budget of request bodies held in memory at once (manifests, token forms).
// No spec section: bounds what slow or hostile clients can make the process hold (issue 18).

export interface ByteBudget {
  /** Takes `bytes` if they fit; false when the budget is spent (nothing is taken then). */
  take(bytes: number): boolean;
  give(bytes: number): void;
  /** Bytes taken now. */
  readonly used: number;
}

export function createByteBudget(total: number): ByteBudget {
  let used = 0;
  return {
    take(bytes) {
      if (used + bytes > total) return false;
      used += bytes;
      return true;
    },
    give(bytes) {
      used -= bytes;
    },
    get used() {
      return used;
    },
  };
}
