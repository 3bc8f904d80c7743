// Owns the storage usage report: each repository's linked bytes, blobs shared between repositories,
// and what deduplication saves. No spec section: a walk of the store like GC's mark, reading only.

import { mapPool } from "../pool.ts";
import { blobPath, layersPath, revisionsPath, tagsPath } from "../storage/paths.ts";
import { sortedRepositories } from "../store/catalog.ts";
import { listBlobs, listDigestTree } from "../store/inventory.ts";
import { orMissing, type StoreState } from "../store/state.ts";

export interface RepositoryFootprint {
  name: string;
  tags: number;
  manifests: number;
  /** Blobs linked into the repository whose bytes are stored. */
  blobs: number;
  /** Their sizes added up: what the repository would take on its own. */
  bytes: number;
}

export interface BlobLinks {
  digest: string;
  size: number;
  /** Repositories that link it, sorted. */
  repositories: string[];
}

export interface StorageUsage {
  /** Every stored blob (layers, configs, manifests), linked or not. */
  stored: { blobs: number; bytes: number };
  repositories: RepositoryFootprint[];
  /** Every stored blob linked into at least one repository. */
  linked: BlobLinks[];
  computedAt: string;
  durationMs: number;
}

/** Repositories walked at once; each runs its own listings and stats below the IO pool. */
const REPOSITORY_POOL = 4;
const IO_POOL = 16;

/**
 * Walks the catalog's repositories (tags, revisions, layer links) and stats every stored blob,
 * with bounded concurrency: every step awaits storage, so requests keep being served meanwhile.
 */
export async function measureUsage(state: StoreState): Promise<StorageUsage> {
  const started = performance.now();
  const { driver } = state;
  const blobs = await listBlobs(driver);
  const sizes = new Map<string, number>();
  await mapPool(blobs.digests, IO_POOL, async (digest) => {
    const info = await orMissing(driver.stat(blobPath(digest)));
    if (info) sizes.set(digest.value, info.size);
  });
  const links = new Map<string, string[]>();
  const names = await sortedRepositories(state);
  const repositories = await mapPool(names, REPOSITORY_POOL, async (name) => {
    const [tags, revisions, layers] = await Promise.all([
      driver.list(tagsPath(name)),
      listDigestTree(driver, revisionsPath(name)),
      listDigestTree(driver, layersPath(name)),
    ]);
    let blobCount = 0;
    let bytes = 0;
    for (const digest of layers.digests) {
      const size = sizes.get(digest.value);
      if (size === undefined) continue;
      blobCount++;
      bytes += size;
      const linked = links.get(digest.value);
      if (linked) linked.push(name);
      else links.set(digest.value, [name]);
    }
    return {
      name,
      tags: tags.length,
      manifests: revisions.digests.length,
      blobs: blobCount,
      bytes,
    };
  });
  let storedBytes = 0;
  for (const size of sizes.values()) storedBytes += size;
  const linked = [...links].map(([digest, names]) => ({
    digest,
    size: sizes.get(digest)!,
    repositories: names.sort(),
  }));
  return {
    stored: { blobs: sizes.size, bytes: storedBytes },
    repositories,
    linked,
    computedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - started),
  };
}
