// Owns the set of blobs this process has hashed in full and found right (src/api/blobs.ts checks
// a blob's first pull against it; fsck and quarantine update it). Issue 6's integrity rule.

/** Digests whose bytes this process has hashed in full and found right, per registry. */
const verifiedSets = new WeakMap<object, Set<string>>();
const MAX_VERIFIED = 200_000;

/** The registry's verified set; cleared when it grows past a bound (then blobs are re-checked). */
export function verifiedBlobs(
  registry: object,
): { has(d: string): boolean; add(d: string): void; delete(d: string): void } {
  let set = verifiedSets.get(registry);
  if (!set) verifiedSets.set(registry, set = new Set());
  const verified = set;
  return {
    has: (digest) => verified.has(digest),
    add: (digest) => {
      if (verified.size >= MAX_VERIFIED) verified.clear();
      verified.add(digest);
    },
    delete: (digest) => verified.delete(digest),
  };
}
