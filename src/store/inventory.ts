// Owns walks over the whole store for maintenance (GC, fsck, the catalog's first fill).
// Reads the layout of src/storage/paths.ts through the driver only, so it works on any driver.

import { type Digest, parseDigest } from "../grammar.ts";
import type { StorageDriver } from "../storage/driver.ts";
import {
  allReferrersPath,
  BLOBS,
  layersPath,
  parseReferrerEntry,
  referrersPath,
  REPOSITORIES,
  REPOSITORY_MARKERS,
  revisionsPath,
  tagPath,
  tagsPath,
} from "../storage/paths.ts";
import { orMissing } from "./state.ts";
import { mapPool } from "../pool.ts";

/** Listings a walk runs at once: a bounded pool (src/pool.ts), never one per folder. */
export const WALK_POOL = 16;

/**
 * Every repository that holds one of `markers` (by default anything: manifests, layer links or
 * referrers), sorted. One listing per level of every name, a level at a time, WALK_POOL at once.
 */
export async function walkRepositories(
  driver: StorageDriver,
  markers = REPOSITORY_MARKERS,
): Promise<string[]> {
  const names: string[] = [];
  let level = [{ prefix: REPOSITORIES, name: "" }];
  while (level.length > 0) {
    const listed = await mapPool(level, WALK_POOL, ({ prefix }) => driver.list(prefix));
    const next: typeof level = [];
    level.forEach(({ prefix, name }, i) => {
      if (name && listed[i].some((child) => markers.includes(child))) names.push(name);
      for (const child of listed[i]) {
        if (!child.startsWith("_")) {
          next.push({ prefix: `${prefix}/${child}`, name: name ? `${name}/${child}` : child });
        }
      }
    });
    level = next;
  }
  return names.sort();
}

/** Names under a `<alg>/<hex>` tree; `strays` are keys that are not digests. */
export async function listDigestTree(
  driver: StorageDriver,
  prefix: string,
): Promise<{ digests: Digest[]; strays: string[] }> {
  const digests: Digest[] = [];
  const strays: string[] = [];
  for (const algorithm of await driver.list(prefix)) {
    for (const encoded of await driver.list(`${prefix}/${algorithm}`)) {
      const digest = parseDigest(`${algorithm}:${encoded}`);
      if (digest) digests.push(digest);
      else strays.push(`${prefix}/${algorithm}/${encoded}`);
    }
  }
  return { digests, strays };
}

/** Every stored blob (`blobs/<alg>/<xx>/<hex>`); `strays` are keys that break the layout. */
export async function listBlobs(
  driver: StorageDriver,
): Promise<{ digests: Digest[]; strays: string[] }> {
  const digests: Digest[] = [];
  const strays: string[] = [];
  for (const algorithm of await driver.list(BLOBS)) {
    for (const prefix of await driver.list(`${BLOBS}/${algorithm}`)) {
      for (const encoded of await driver.list(`${BLOBS}/${algorithm}/${prefix}`)) {
        const digest = parseDigest(`${algorithm}:${encoded}`);
        if (digest && encoded.startsWith(prefix) && prefix.length === 2) digests.push(digest);
        else strays.push(`${BLOBS}/${algorithm}/${prefix}/${encoded}`);
      }
    }
  }
  return { digests, strays };
}

export interface RepositoryListing {
  name: string;
  /** tag → the digest its file names (undefined when the file is unreadable or not a digest). */
  tags: Map<string, Digest | undefined>;
  revisions: Digest[];
  layers: Digest[];
  /** subject digest value → referrer digests. */
  referrers: Map<string, Digest[]>;
  strays: string[];
}

export async function listRepository(
  driver: StorageDriver,
  name: string,
): Promise<RepositoryListing> {
  const tags = new Map<string, Digest | undefined>();
  for (const tag of await driver.list(tagsPath(name))) {
    const bytes = await orMissing(driver.get(tagPath(name, tag)));
    if (bytes) tags.set(tag, parseDigest(new TextDecoder().decode(bytes).trim()));
  }
  const revisions = await listDigestTree(driver, revisionsPath(name));
  const layers = await listDigestTree(driver, layersPath(name));
  const referrers = new Map<string, Digest[]>();
  const strays = [...revisions.strays, ...layers.strays];
  const root = allReferrersPath(name);
  const subjects = await listDigestTree(driver, root);
  strays.push(...subjects.strays);
  for (const subject of subjects.digests) {
    const prefix = referrersPath(name, subject);
    const list: Digest[] = [];
    for (const entry of await driver.list(prefix)) {
      const digest = parseReferrerEntry(entry);
      if (digest) list.push(digest);
      else strays.push(`${prefix}/${entry}`);
    }
    referrers.set(subject.value, list);
  }
  return {
    name,
    tags,
    revisions: revisions.digests,
    layers: layers.digests,
    referrers,
    strays,
  };
}
