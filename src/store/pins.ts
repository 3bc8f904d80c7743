// Owns the handshake between pushes and online GC: digests a push relies on are pinned under the
// digest's lock, so a concurrent sweep (which re-checks under the same lock) never deletes them.

import type { Digest } from "../grammar.ts";
import { digestLock, type WithLock } from "./locks.ts";

/**
 * Where pins live: this process's memory (`createPins`), or Redis for several instances
 * (src/redis/pins.ts), so that a pass on any instance sees every instance's pushes.
 */
export interface Pins {
  /** Pins a digest; the caller holds its lock. A pass spares it until it is released. */
  hold(digest: Digest): Promise<void>;
  /** Releases pins; a pass running meanwhile still spares them (they count as touched). */
  release(digests: Iterable<Digest>): Promise<void>;
  /** Records, under the digest's lock, that a push just linked it: the running pass spares it. */
  touch(digest: Digest): Promise<void>;
  /** A sweep must not delete what a push holds, or held or touched since the pass began. */
  isPinned(digest: string): Promise<boolean>;
  /** A GC pass begins: from now until `endPass`, what is pinned or touched is remembered. */
  beginPass(): Promise<void>;
  endPass(): Promise<void>;
}

/** Pins in this process's memory. */
export function createPins(): Pins {
  /** Digests an in-flight push has checked and is about to reference, with a count. */
  const held = new Map<string, number>();
  /** Every digest pinned or linked since the running GC pass began; undefined between passes. */
  let touched: Set<string> | undefined;
  return {
    hold(digest) {
      held.set(digest.value, (held.get(digest.value) ?? 0) + 1);
      touched?.add(digest.value);
      return Promise.resolve();
    },
    release(digests) {
      for (const digest of digests) {
        const count = (held.get(digest.value) ?? 0) - 1;
        if (count > 0) held.set(digest.value, count);
        else held.delete(digest.value);
        touched?.add(digest.value);
      }
      return Promise.resolve();
    },
    touch(digest) {
      touched?.add(digest.value);
      return Promise.resolve();
    },
    isPinned: (digest) => Promise.resolve(held.has(digest) || (touched?.has(digest) ?? false)),
    beginPass() {
      touched = new Set(held.keys());
      return Promise.resolve();
    },
    endPass() {
      touched = undefined;
      return Promise.resolve();
    },
  };
}

/**
 * Under the digest's lock: runs `check` and, if it holds, pins the digest until released.
 * Resolves to whether the check held (when false nothing is pinned).
 */
export function pin(
  state: { withLock: WithLock; pins: Pins },
  digest: Digest,
  check: () => Promise<boolean>,
): Promise<boolean> {
  return state.withLock(digestLock(digest), async () => {
    if (!await check()) return false;
    await state.pins.hold(digest);
    return true;
  });
}

/** Releases pins taken with `pin`. */
export function unpin(state: { pins: Pins }, digests: Iterable<Digest>): Promise<void> {
  return state.pins.release(digests);
}
