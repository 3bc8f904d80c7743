// Owns brute-force protection: failed logins counted per (address, user), slowed, then refused.
// Implements issue 5's "slowed and then answered 429 TOOMANYREQUESTS with Retry-After".

export interface LimiterOptions {
  /** Failures answered at once before the slowing starts (default 3). */
  freeFailures?: number;
  /** Failures after which the pair is blocked (default 10). */
  maxFailures?: number;
  /** First delay once slowing starts, doubled per failure (default 250 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How long a block lasts (default 5 min). */
  blockMs?: number;
  /** Failures older than this are forgotten (default 15 min). */
  windowMs?: number;
  /** Pairs tracked at most (default 10,000); the oldest go first. */
  maxEntries?: number;
  now?: () => number;
}

export interface Limiter {
  /** Milliseconds left on a block, or 0 when the pair may try. */
  blockedFor(address: string, user: string): number;
  /** Records a failure; resolves to how long to hold the failed answer back. */
  failure(address: string, user: string): number;
  success(address: string, user: string): void;
}

interface Entry {
  failures: number;
  last: number;
  blockedUntil: number;
}

export function createLimiter(options: LimiterOptions = {}): Limiter {
  const free = options.freeFailures ?? 3;
  const max = options.maxFailures ?? 10;
  const base = options.baseDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 4000;
  const blockMs = options.blockMs ?? 5 * 60_000;
  const windowMs = options.windowMs ?? 15 * 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const keyOf = (address: string, user: string) => `${address}\0${user}`;

  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.blockedUntil <= now() && now() - entry.last > windowMs) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };

  return {
    blockedFor(address, user) {
      const entry = live(keyOf(address, user));
      return entry ? Math.max(0, entry.blockedUntil - now()) : 0;
    },
    failure(address, user) {
      const key = keyOf(address, user);
      let entry = live(key);
      if (!entry) {
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entry = { failures: 0, last: 0, blockedUntil: 0 };
      }
      entries.delete(key); // re-inserted last: the Map's order is the eviction order
      entries.set(key, entry);
      entry.failures++;
      entry.last = now();
      if (entry.failures >= max) {
        entry.blockedUntil = now() + blockMs;
        entry.failures = 0;
      }
      const over = entry.failures - free;
      return over <= 0 ? 0 : Math.min(maxDelay, base * 2 ** (over - 1));
    },
    success(address, user) {
      entries.delete(keyOf(address, user));
    },
  };
}
