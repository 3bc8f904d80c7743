// Owns brute-force limits: failures per (address, user) and per address, slowed, then blocked.
// Implements issue 5's 429 TOOMANYREQUESTS with Retry-After, issue 18's budget across user names.

import { createHash } from "node:crypto";
import { formatIp, isV4, parseIp } from "../forwarded.ts";

/** One table's rules. */
export interface Limits {
  /** Failures answered at once before the slowing starts. */
  freeFailures: number;
  /** Failures after which the key is blocked. */
  maxFailures: number;
  /** First delay once slowing starts, doubled per failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long a block lasts. */
  blockMs: number;
  /** Failures older than this are forgotten. */
  windowMs: number;
  /** Counters and blocks kept at most; the least recently failed counter goes first. */
  maxEntries: number;
}

/** The (address, user) limits at the top level, as before; `address` for the budget across users. */
export interface LimiterOptions extends Partial<Limits> {
  address?: Partial<Limits>;
  now?: () => number;
}

const PAIR_LIMITS: Limits = {
  freeFailures: 3,
  maxFailures: 10,
  baseDelayMs: 250,
  maxDelayMs: 4000,
  blockMs: 5 * 60_000,
  windowMs: 15 * 60_000,
  maxEntries: 10_000,
};
/** One address trying many user names (spraying): a larger budget, then the same block. */
const ADDRESS_LIMITS: Limits = { ...PAIR_LIMITS, freeFailures: 10, maxFailures: 30 };

export interface Limiter {
  /** Milliseconds left on the block of this user from this address, or 0 when it may try. */
  blockedFor(address: string, user: string): number;
  /** Milliseconds left on the block of this address, whatever the user, or 0. */
  addressBlockedFor(address: string): number;
  /** Records a failed password; returns how long to hold the failed answer back. */
  failure(address: string, user: string): number;
  /** Records a guess refused unchecked (its address was blocked), against the pair only. */
  refused(address: string, user: string): void;
  success(address: string, user: string): void;
}

export function createLimiter(options: LimiterOptions = {}): Limiter {
  const now = options.now ?? Date.now;
  const { address: addressOptions, now: _, ...pairOptions } = options;
  const pairs = createTable({ ...PAIR_LIMITS, ...pairOptions }, now);
  const addresses = createTable({ ...ADDRESS_LIMITS, ...addressOptions }, now);
  const pairKey = (address: string, user: string) =>
    `${addressKey(address)}\0${user.length <= 64 ? user : sha256(user)}`;
  return {
    blockedFor: (address, user) => pairs.blockedFor(pairKey(address, user)),
    addressBlockedFor: (address) => addresses.blockedFor(addressKey(address)),
    failure(address, user) {
      const pair = pairs.failure(pairKey(address, user));
      return Math.max(pair, addresses.failure(addressKey(address)));
    },
    refused(address, user) {
      pairs.failure(pairKey(address, user));
    },
    success(address, user) {
      // The address's budget is not reset: one valid account must not buy a sprayer new guesses.
      pairs.reset(pairKey(address, user));
    },
  };
}

/**
 * The key an address is limited under: IPv6 clients by their /64, since one host usually holds a
 * whole /64 and could otherwise take a fresh address per guess.
 */
export function addressKey(address: string): string {
  const ip = parseIp(address);
  if (!ip) return address;
  if (isV4(ip)) return formatIp(ip);
  return `${formatIp(new Uint8Array([...ip.subarray(0, 8), ...new Uint8Array(8)]))}/64`;
}

interface Counter {
  failures: number;
  last: number;
}

interface Table {
  blockedFor(key: string): number;
  /** Counts a failure; returns the delay it earns (0 when it starts a block). */
  failure(key: string): number;
  reset(key: string): void;
}

/**
 * Counters live in a Map kept in order of their last failure, blocks in another in order of their
 * end. Together they hold at most `maxEntries`: room is made from expired blocks, then from the
 * stalest counter; a live block is never dropped, and a counter becoming a block keeps its slot.
 */
function createTable(limits: Limits, now: () => number): Table {
  const counters = new Map<string, Counter>();
  const blocks = new Map<string, number>();
  const size = () => counters.size + blocks.size;
  const makeRoom = () => {
    for (const [key, until] of blocks) {
      if (until > now()) break;
      blocks.delete(key);
    }
    if (size() >= limits.maxEntries) {
      const stalest = counters.keys().next();
      if (!stalest.done) counters.delete(stalest.value);
    }
  };
  const blockedFor = (key: string) => {
    const until = blocks.get(key);
    if (until === undefined) return 0;
    if (until > now()) return until - now();
    blocks.delete(key);
    return 0;
  };
  return {
    blockedFor,
    failure(key) {
      if (blockedFor(key) > 0) return 0;
      let counter = counters.get(key);
      counters.delete(key); // re-inserted last: the Map's order is the eviction order
      if (counter && now() - counter.last > limits.windowMs) counter = undefined;
      if (!counter) {
        if (size() >= limits.maxEntries) makeRoom();
        // Full of live blocks: this key goes uncounted; the bound on password checks still holds.
        if (size() >= limits.maxEntries) return 0;
        counter = { failures: 0, last: 0 };
      }
      counter.failures++;
      counter.last = now();
      if (counter.failures >= limits.maxFailures) {
        blocks.set(key, now() + limits.blockMs);
        return 0;
      }
      counters.set(key, counter);
      const over = counter.failures - limits.freeFailures;
      return over <= 0 ? 0 : Math.min(limits.maxDelayMs, limits.baseDelayMs * 2 ** (over - 1));
    },
    reset(key) {
      counters.delete(key);
    },
  };
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("base64");
}
