// Owns read-only figures about a repository for browsing: when its tags were pushed, what it holds.
// No spec section: the web UI's listings (src/ui/) read these instead of walking storage themselves.

import type { Digest } from "../grammar.ts";
import { mapPool } from "../pool.ts";
import { layersPath, revisionsPath, tagPath } from "../storage/paths.ts";
import { blobSize } from "./blobs.ts";
import { listDigestTree } from "./inventory.ts";
import { orMissing, type StoreState } from "./state.ts";
import { lookupTag } from "./tags.ts";

/** A tag as a listing shows it: the digest it names and when it was last written. */
export interface TagRecord {
  tag: string;
  digest: Digest;
  pushed: Date;
}

/** What a repository holds: the blobs linked into it (with their sizes) and its manifests. */
export interface RepositoryUsage {
  /** Linked blobs whose bytes are stored, with their sizes. */
  blobs: { digest: Digest; size: number }[];
  /** Manifest revisions the repository holds. */
  manifests: number;
}

/** Storage operations run at once while one description is gathered. */
const IO_POOL = 16;

/** Each tag's digest and last write (a stat per tag); tags deleted meanwhile are left out. */
export async function describeTags(
  state: StoreState,
  name: string,
  tags: readonly string[],
): Promise<TagRecord[]> {
  const records = await mapPool(tags, IO_POOL, async (tag) => {
    const [info, digest] = await Promise.all([
      orMissing(state.driver.stat(tagPath(name, tag))),
      lookupTag(state, name, tag),
    ]);
    return info && digest ? { tag, digest, pushed: info.modified } : undefined;
  });
  return records.filter((record) => record !== undefined);
}

/** The repository's linked blobs and their sizes (a stat per blob), and its manifest count. */
export async function describeUsage(state: StoreState, name: string): Promise<RepositoryUsage> {
  const [layers, revisions] = await Promise.all([
    listDigestTree(state.driver, layersPath(name)),
    listDigestTree(state.driver, revisionsPath(name)),
  ]);
  const sized = await mapPool(layers.digests, IO_POOL, async (digest) => {
    const size = await blobSize(state, digest);
    return size === undefined ? undefined : { digest, size };
  });
  return {
    blobs: sized.filter((blob) => blob !== undefined),
    manifests: revisions.digests.length,
  };
}
