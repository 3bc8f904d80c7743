// Owns the lifetime of a mirror's cache inside a GC pass: cached manifests not pulled for a while,
// or past the cache's byte budget (least recently pulled first), are dropped with their tags.

/*
 * Runs before the pass marks anything: a dropped manifest's revision and tags are deleted (under
 * the repository's tags lock and the digest's lock, re-checking pins and pulls made since the
 * pass began, as the sweep does), and the pass's listing forgets them, so the blobs only they
 * referenced are swept by the same pass, under its grace and pins. A manifest pulled, or cached,
 * within the grace is never dropped. Everything dropped is fetched again on its next pull.
 */

import { type Digest, parseDigest } from "../grammar.ts";
import { log } from "../log.ts";
import type { Revision } from "../oci/manifest.ts";
import { blobPath, revisionLinkPath, tagsPath } from "../storage/paths.ts";
import type { RepositoryListing } from "../store/inventory.ts";
import { digestLock, tagsLock } from "../store/locks.ts";
import { deleteRevision } from "../store/manifests.ts";
import { lastPulls, prunePulls, pullsSince } from "../store/pulls.ts";
import { orMissing, readJson, type StoreState } from "../store/state.ts";
import { deleteTag, readTag } from "../store/tags.ts";

export interface CacheLimits {
  /** Whether a repository is a mirror's cache (src/proxy/routing.ts). */
  isCached(name: string): boolean;
  /** Cached manifests not pulled for this long (ms) are dropped. */
  maxAge?: number;
  /** Bytes the cache may hold (blobs no local repository uses); the least recently pulled go. */
  maxBytes?: number;
}

export interface EvictionReport {
  manifests: number;
  tags: number;
  /** Cache bytes the dropped manifests alone referenced (freed once the grace has passed). */
  bytes: number;
  /** Cache bytes before, as counted for `maxBytes`. */
  cachedBytes: number;
}

export interface EvictionOptions {
  limits: CacheLimits;
  /** Anything pulled or written after this (ms since the epoch) stays. */
  cutoff: number;
  /** When the pass began: a pull since then keeps its manifest. */
  started: number;
  dryRun: boolean;
  /** What a manifest references (the pass's own cached reader). */
  references(digest: Digest): Promise<{ blobs: Digest[] } | undefined>;
}

interface Entry {
  repository: RepositoryListing;
  digest: Digest;
  lastPulled: number;
  /** The manifest and the blobs it references. */
  blobs: string[];
}

export async function evictCached(
  state: StoreState,
  repositories: RepositoryListing[],
  options: EvictionOptions,
): Promise<EvictionReport> {
  const { limits } = options;
  const report: EvictionReport = { manifests: 0, tags: 0, bytes: 0, cachedBytes: 0 };
  const entries: Entry[] = [];
  const local = new Set<string>();
  // Before pulls were recorded nothing is known: no manifest counts as older than that.
  const since = await pullsSince(state) ?? 0;
  for (const repository of repositories) {
    if (!limits.isCached(repository.name)) {
      for (const digest of repository.layers) local.add(digest.value);
      for (const digest of repository.revisions) {
        local.add(digest.value);
        for (const blob of (await options.references(digest))?.blobs ?? []) local.add(blob.value);
      }
      continue;
    }
    const pulls = await lastPulls(state, repository.name);
    for (const digest of repository.revisions) {
      const written = await orMissing(state.driver.stat(revisionLinkPath(repository.name, digest)));
      let lastPulled = Math.max(
        since,
        written?.modified.getTime() ?? 0,
        pulls.manifests[digest.value] ?? 0,
      );
      for (const [tag, target] of repository.tags) {
        if (target?.value === digest.value) lastPulled = Math.max(lastPulled, pulls.tags[tag] ?? 0);
      }
      const refs = await options.references(digest);
      const blobs = [digest.value, ...(refs?.blobs ?? []).map((d) => d.value)];
      entries.push({ repository, digest, lastPulled, blobs });
    }
  }
  const pinned = new Set<string>();
  for (const entry of entries) {
    if (await state.pins.isPinned(entry.digest.value)) pinned.add(entry.digest.value);
  }
  const evictable = (entry: Entry) =>
    entry.lastPulled < options.cutoff && !pinned.has(entry.digest.value);

  // By age.
  const chosen = new Set<Entry>();
  if (limits.maxAge !== undefined) {
    const oldest = options.started - limits.maxAge;
    for (const entry of entries) {
      if (entry.lastPulled < oldest && evictable(entry)) chosen.add(entry);
    }
  }
  // By bytes: what the cache alone holds, least recently pulled first.
  const users = new Map<string, number>();
  for (const entry of entries) {
    if (chosen.has(entry)) continue;
    for (const blob of new Set(entry.blobs)) users.set(blob, (users.get(blob) ?? 0) + 1);
  }
  const sizes = new Map<string, number>();
  for (const blob of users.keys()) {
    if (local.has(blob)) continue;
    const info = await orMissing(state.driver.stat(blobPath(parseDigest(blob)!)));
    sizes.set(blob, info?.size ?? 0);
  }
  let total = [...sizes.values()].reduce((sum, size) => sum + size, 0);
  report.cachedBytes = total;
  const release = (entry: Entry) => {
    let freed = 0;
    for (const blob of new Set(entry.blobs)) {
      const left = (users.get(blob) ?? 1) - 1;
      users.set(blob, left);
      if (left === 0) freed += sizes.get(blob) ?? 0;
    }
    return freed;
  };
  if (limits.maxBytes !== undefined && total > limits.maxBytes) {
    const candidates = entries.filter((e) => !chosen.has(e) && evictable(e))
      .sort((a, b) => a.lastPulled - b.lastPulled);
    for (const entry of candidates) {
      if (total <= limits.maxBytes) break;
      chosen.add(entry);
      total -= release(entry);
    }
  }

  const touched = new Set<RepositoryListing>();
  for (const entry of chosen) {
    const dropped = await drop(state, entry, options);
    if (dropped === undefined) continue;
    touched.add(entry.repository);
    report.manifests++;
    report.tags += dropped;
    report.bytes += entry.blobs.filter((b) => sizes.has(b) && users.get(b) === 0)
      .reduce((sum, b) => sum + sizes.get(b)!, 0);
  }
  if (!options.dryRun) {
    for (const repository of touched) {
      await prunePulls(state, repository.name, {
        tags: new Set(repository.tags.keys()),
        manifests: new Set(repository.revisions.map((d) => d.value)),
      });
    }
  }
  if (chosen.size > 0) {
    log.info("cache evicted", {
      "gc.dry_run": options.dryRun,
      "cache.evicted.manifests": report.manifests,
      "cache.evicted.tags": report.tags,
      "cache.bytes": report.cachedBytes,
    });
  }
  return report;
}

/**
 * Deletes a cached manifest's tags and revision, re-checking under the locks that no push holds
 * it and no pull came since the pass began; resolves to the tags deleted, or undefined if spared.
 * The listing forgets it either way it goes (a dry run too, so the pass counts what would go).
 */
function drop(
  state: StoreState,
  entry: Entry,
  options: EvictionOptions,
): Promise<number | undefined> {
  const { repository, digest } = entry;
  const name = repository.name;
  return state.withLock(
    tagsLock(name),
    (tagsHeld) =>
      state.withLock(digestLock(digest), async (held) => {
        if (await state.pins.isPinned(digest.value)) return undefined;
        const pending = state.pulls?.pending.get(name);
        const tags = [...repository.tags].filter(([, d]) => d?.value === digest.value)
          .map(([tag]) => tag);
        const pulledSince = (pending?.manifests[digest.value] ?? 0) >= options.started ||
          tags.some((tag) => (pending?.tags[tag] ?? 0) >= options.started);
        if (pulledSince) return undefined;
        let deleted = 0;
        if (!options.dryRun) {
          const revision = await readJson<Revision>(state, revisionLinkPath(name, digest));
          if (!revision) return undefined;
          // Tags as they are now (one may have moved here since the listing).
          for (const tag of await state.driver.list(tagsPath(name))) {
            if ((await readTag(state, name, tag))?.value === digest.value) {
              await deleteTag(state, name, tag, tagsHeld);
              deleted++;
            }
          }
          await held.confirm();
          await deleteRevision(state, name, digest, revision.subject);
        } else deleted = tags.length;
        for (const tag of tags) repository.tags.delete(tag);
        repository.revisions = repository.revisions.filter((d) => d.value !== digest.value);
        return deleted;
      }),
  );
}
