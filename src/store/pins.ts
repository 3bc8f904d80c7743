// Owns the handshake between pushes and online GC: digests a push relies on are pinned under the
// digest's lock, so a concurrent sweep (which re-checks under the same lock) never deletes them.

import type { Digest } from "../grammar.ts";
import { digestLock, type WithLock } from "./locks.ts";

export interface Pins {
  /** Digests an in-flight push has checked and is about to reference, with a count. */
  held: Map<string, number>;
  /** Every digest pinned or linked since the running GC pass began; undefined between passes. */
  touched: Set<string> | undefined;
}

export function createPins(): Pins {
  return { held: new Map(), touched: undefined };
}

/**
 * Under the digest's lock: runs `check` and, if it holds, pins the digest until `unpin`.
 * Resolves to whether the check held (when false nothing is pinned).
 */
export function pin(
  state: { withLock: WithLock; pins: Pins },
  digest: Digest,
  check: () => Promise<boolean>,
): Promise<boolean> {
  return state.withLock(digestLock(digest), async () => {
    if (!await check()) return false;
    const { held, touched } = state.pins;
    held.set(digest.value, (held.get(digest.value) ?? 0) + 1);
    touched?.add(digest.value);
    return true;
  });
}

export function unpin(pins: Pins, digests: Iterable<Digest>): void {
  for (const digest of digests) {
    const count = (pins.held.get(digest.value) ?? 0) - 1;
    if (count > 0) pins.held.set(digest.value, count);
    else pins.held.delete(digest.value);
  }
}

/** Records, while holding the digest's lock, that a push just linked it into a repository. */
export function touch(pins: Pins, digest: Digest): void {
  pins.touched?.add(digest.value);
}

/** A sweep must not delete what a push holds or touched during this pass. */
export function isPinned(pins: Pins, digest: string): boolean {
  return pins.held.has(digest) || (pins.touched?.has(digest) ?? false);
}
