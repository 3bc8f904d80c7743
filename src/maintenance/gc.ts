// Owns garbage collection: online mark-and-sweep of manifests, blobs and links, and upload expiry.
// Implements distribution's `garbage-collect`, but while the registry serves (and upload expiry).

/*
 * How GC stays safe while pushes go on (no global stop of writers, nothing relies on rename):
 * 1. Grace: a run starts at T and spares anything (blob, layer link, manifest revision) modified
 *    after T - grace, so layers whose manifest is not pushed yet survive `--gc-grace`.
 * 2. Pins: every push path takes the per-digest lock (the blob's key, src/pins.ts) when it
 *    commits to a digest: upload completion and mounts while they write the layer link, and a
 *    manifest PUT while it checks each reference (it holds the pins until its revision and tag
 *    are written). A digest pinned during a run, or held when it began, joins the run's
 *    `touched` set. The sweep deletes each candidate under the same lock, after re-checking
 *    the pins, `touched`, and the stat() times of the blob, its links or the revision. So
 *    either the push checks first (the sweep then sees the pin and keeps the digest) or the
 *    sweep deletes first (the push then finds it missing and answers BLOB/MANIFEST unknown,
 *    and the client pushes it again) — never a 2xx for something the sweep then removes.
 * Deletes go in the order that leaves a crash harmless: referrer entry, revision, then the
 * links, then the bytes. Locks and pins are this process's, unless instances share them through
 * Redis (`--redis`, src/redis/): then a pass on any instance sees every instance's pins, and the
 * same argument holds across processes. There a lock is a lease, and the sweep confirms it still
 * holds the digest's lock before each delete. Without Redis, another process writing the same
 * storage (offline `gc` next to a live server, several instances on S3) is protected by the
 * grace only.
 */

import { formatDuration } from "../duration.ts";
import { type CacheLimits, evictCached, type EvictionReport } from "./cache.ts";
import type { Digest } from "../grammar.ts";
import { log } from "../log.ts";
import { manifestReferences, type Revision } from "../oci/manifest.ts";
import { blobPath, layerLinkPath, revisionLinkPath } from "../storage/paths.ts";
import {
  listBlobs,
  listRepository,
  type RepositoryListing,
  WALK_POOL,
  walkRepositories,
} from "../store/inventory.ts";
import { mapPool } from "../pool.ts";
import { digestLock, GC_LOCK } from "../store/locks.ts";
import { deleteRevision } from "../store/manifests.ts";
import { orMissing, type StoreState } from "../store/state.ts";
import { expireSessions } from "../store/uploads.ts";
import { describeRetention, type RetentionContext, type RetentionReport } from "./retention.ts";

export interface GcOptions {
  /** Anything modified more recently than this (ms) is never swept. */
  grace: number;
  /** Also sweep manifests no tag, index or subject reaches. */
  untagged: boolean;
  /** Upload sessions idle longer than this (ms) are deleted; undefined: uploads are left alone. */
  uploadTtl?: number;
  /** Count what would go, delete nothing. */
  dryRun?: boolean;
  /** Stops a run between deletions (shutdown). */
  signal?: AbortSignal;
  /** The pass's clock (ms since the epoch); tests pass a simulated one. */
  now?: number;
  /**
   * Retention (src/maintenance/retention.ts), run on the listing before the mark: it deletes
   * through the store and takes what it deleted out of the listing (a dry run only the latter).
   */
  retention?: (
    repositories: RepositoryListing[],
    context: RetentionContext,
  ) => Promise<RetentionReport | undefined>;
  /** A mirror's cache limits: cached manifests to drop first (src/maintenance/cache.ts). */
  cache?: CacheLimits;
}

export interface GcReport {
  dryRun: boolean;
  marked: { manifests: number; blobs: number };
  swept: { manifests: number; blobs: number; links: number; bytes: number };
  uploads: { expired: number; bytes: number };
  /** Candidates spared because they were young or a push held them during the sweep. */
  spared: number;
  /** Set when the sweep of blobs was skipped because a live manifest could not be read. */
  skipped?: string;
  /** What retention deleted (or would), and why. */
  retention?: RetentionReport;
  /** Cached manifests dropped for the cache's limits (with `cache` only). */
  evicted?: EvictionReport;
  durationMs: number;
}

/** One full pass: mark, sweep manifests, sweep blobs and links, expire uploads. */
export function runGc(state: StoreState, options: GcOptions): Promise<GcReport> {
  return state.withLock(GC_LOCK, () => pass(state, options));
}

async function pass(state: StoreState, options: GcOptions): Promise<GcReport> {
  const started = options.now ?? Date.now();
  const t0 = performance.now();
  const cutoff = started - options.grace;
  const dryRun = options.dryRun ?? false;
  const { driver, pins, cache } = state;
  const report: GcReport = {
    dryRun,
    marked: { manifests: 0, blobs: 0 },
    swept: { manifests: 0, blobs: 0, links: 0, bytes: 0 },
    uploads: { expired: 0, bytes: 0 },
    spared: 0,
    durationMs: 0,
  };
  const young = async (key: string) => {
    const info = await orMissing(driver.stat(key));
    return info !== undefined && info.modified.getTime() >= cutoff;
  };
  const aborted = () => options.signal?.aborted ?? false;

  await pins.beginPass();
  try {
    // Mark.
    const repositories = await mapPool(
      await walkRepositories(driver),
      WALK_POOL,
      (name) => listRepository(driver, name),
    );
    const references = new Map<string, ReturnType<typeof manifestReferences>>();
    const readReferences = async (digest: Digest) => {
      if (!references.has(digest.value)) {
        const bytes = await orMissing(driver.get(blobPath(digest)));
        const refs = bytes && manifestReferences(bytes);
        if (bytes && !refs) report.skipped = `manifest ${digest.value} is not readable JSON`;
        references.set(digest.value, refs || undefined);
      }
      return references.get(digest.value);
    };
    if (options.retention) {
      report.retention = await options.retention(repositories, {
        dryRun,
        now: started,
        signal: options.signal,
        references: readReferences,
      });
    }
    if (options.cache) {
      report.evicted = await evictCached(state, repositories, {
        limits: options.cache,
        cutoff,
        started,
        dryRun,
        references: readReferences,
      });
    }
    const liveBlobs = new Set<string>();
    const deadRevisions: { repository: RepositoryListing; digest: Digest }[] = [];
    for (const repository of repositories) {
      const revisions = new Map(repository.revisions.map((d) => [d.value, d]));
      const queue: Digest[] = [];
      for (const digest of repository.tags.values()) if (digest) queue.push(digest);
      for (const digest of repository.revisions) {
        const root = !options.untagged || await pins.isPinned(digest.value) ||
          await young(revisionLinkPath(repository.name, digest));
        if (root) queue.push(digest);
      }
      const live = new Set<string>();
      while (queue.length > 0) {
        const digest = queue.pop()!;
        if (live.has(digest.value) || !revisions.has(digest.value)) continue;
        live.add(digest.value);
        liveBlobs.add(digest.value);
        const refs = await readReferences(digest);
        for (const blob of refs?.blobs ?? []) liveBlobs.add(blob.value);
        queue.push(...refs?.manifests ?? [], ...repository.referrers.get(digest.value) ?? []);
      }
      report.marked.manifests += live.size;
      for (const digest of repository.revisions) {
        if (!live.has(digest.value)) deadRevisions.push({ repository, digest });
      }
    }
    report.marked.blobs = liveBlobs.size;
    if (report.skipped) {
      log.error("gc skipped the sweep", { "gc.reason": report.skipped });
      return report;
    }

    // Sweep manifests no tag, index or subject reaches (only with `untagged`).
    for (const { repository, digest } of deadRevisions) {
      if (aborted()) return report;
      const swept = await state.withLock(digestLock(digest), async (held) => {
        const key = revisionLinkPath(repository.name, digest);
        if (await pins.isPinned(digest.value) || await young(key)) return false;
        if (dryRun) return true;
        const revision = await orMissing(driver.get(key));
        if (!revision) return false;
        await held.confirm();
        await deleteRevision(state, repository.name, digest, subjectOf(revision));
        return true;
      });
      if (swept) report.swept.manifests++;
      else {
        // Spared: what it references stays too.
        report.spared++;
        liveBlobs.add(digest.value);
        for (const blob of (await readReferences(digest))?.blobs ?? []) liveBlobs.add(blob.value);
      }
    }

    // Sweep blobs no live manifest references, with the links to them.
    const links = new Map<string, { digest: Digest; repositories: string[] }>();
    const candidate = (digest: Digest) => {
      if (liveBlobs.has(digest.value)) return undefined;
      let entry = links.get(digest.value);
      if (!entry) links.set(digest.value, entry = { digest, repositories: [] });
      return entry;
    };
    for (const repository of repositories) {
      for (const digest of repository.layers) candidate(digest)?.repositories.push(repository.name);
    }
    for (const digest of (await listBlobs(driver)).digests) candidate(digest);

    for (const { digest, repositories: linked } of links.values()) {
      if (aborted()) return report;
      const outcome = await state.withLock(digestLock(digest), async (held) => {
        if (await pins.isPinned(digest.value)) return undefined;
        const blob = await orMissing(driver.stat(blobPath(digest)));
        if (blob && blob.modified.getTime() >= cutoff) return undefined;
        for (const name of linked) {
          if (await young(layerLinkPath(name, digest))) return undefined;
        }
        if (!dryRun) {
          await held.confirm();
          for (const name of linked) {
            const link = layerLinkPath(name, digest);
            await cache.write("link", `${name}@${digest.value}`, () => driver.delete(link), null);
          }
          if (blob) {
            await cache.write("blob", digest.value, () => driver.delete(blobPath(digest)), null);
          }
        }
        return { bytes: blob?.size ?? 0, blob: blob !== undefined };
      });
      if (!outcome) {
        report.spared++;
        continue;
      }
      report.swept.links += linked.length;
      if (outcome.blob) {
        report.swept.blobs++;
        report.swept.bytes += outcome.bytes;
      }
    }

    if (options.uploadTtl !== undefined && !aborted()) {
      report.uploads = await expireSessions(state, options.uploadTtl, dryRun);
    }
    return report;
  } finally {
    await pins.endPass();
    report.durationMs = Math.round(performance.now() - t0);
  }
}

/** Logs a run's outcome at info, with stable dotted keys. */
export function logGcReport(report: GcReport): void {
  log.info("gc finished", {
    "gc.dry_run": report.dryRun,
    "gc.marked.manifests": report.marked.manifests,
    "gc.marked.blobs": report.marked.blobs,
    "gc.swept.manifests": report.swept.manifests,
    "gc.swept.blobs": report.swept.blobs,
    "gc.swept.links": report.swept.links,
    "gc.freed.bytes": report.swept.bytes + report.uploads.bytes,
    "gc.uploads.expired": report.uploads.expired,
    "gc.uploads.bytes": report.uploads.bytes,
    "gc.spared": report.spared,
    ...(report.retention && {
      "gc.retention.tags": report.retention.deletions.filter((d) => d.kind === "tag").length,
      "gc.retention.manifests": report.retention.deletions.filter((d) => d.kind === "manifest")
        .length,
      "gc.retention.skipped": report.retention.skipped,
    }),
    ...(report.evicted && {
      "gc.evicted.manifests": report.evicted.manifests,
      "gc.evicted.tags": report.evicted.tags,
      "gc.evicted.bytes": report.evicted.bytes,
      "gc.cache.bytes": report.evicted.cachedBytes,
    }),
    "duration_ms": report.durationMs,
  });
}

/** A one-paragraph summary for the `gc` command. */
export function describeGcReport(report: GcReport): string {
  const verb = report.dryRun ? "would free" : "freed";
  return [
    ...report.retention ? describeRetention(report.retention) : [],
    `marked ${report.marked.manifests} manifests, ${report.marked.blobs} blobs`,
    `${verb} ${report.swept.manifests} manifests, ${report.swept.blobs} blobs ` +
    `(${report.swept.bytes} bytes), ${report.swept.links} layer links`,
    `${verb} ${report.uploads.expired} upload sessions (${report.uploads.bytes} bytes)`,
    ...report.evicted
      ? [
        `${report.dryRun ? "would drop" : "dropped"} ${report.evicted.manifests} cached ` +
        `manifests and ${report.evicted.tags} tags (cache held ${report.evicted.cachedBytes} bytes)`,
      ]
      : [],
    `spared ${report.spared} young or in-use candidates`,
    ...report.skipped ? [`sweep skipped: ${report.skipped}`] : [],
    `took ${formatDuration(report.durationMs)}${
      report.dryRun ? " (dry run: nothing deleted)" : ""
    }`,
  ].join("\n");
}

export interface GcLoopSettings {
  /** Time between the end of one pass and the start of the next (ms). */
  interval: number;
  grace: number;
  untagged: boolean;
  uploadTtl: number;
  /** Retention, applied at the start of each pass (see GcOptions). */
  retention?: GcOptions["retention"];
  /** While true, passes are skipped (read-only mode): GC writes nothing then. */
  paused?: () => boolean;
  /** Hears each pass's report, or "failed" (quotas recount after it; metrics). */
  finished?: (outcome: GcReport | "failed") => void;
  cache?: CacheLimits;
}

export interface GcLoop {
  /** Stops scheduling, aborts the running pass between deletions, and waits for it. */
  stop(): Promise<void>;
}

/** Runs a pass every `interval`, logging each; errors are logged and the loop goes on. */
export function startGcLoop(state: StoreState, settings: GcLoopSettings): GcLoop {
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      if (settings.paused?.()) {
        log.info("gc skipped: the registry is read-only", {});
        schedule();
        return;
      }
      // With several instances sharing Redis, one of them takes each interval's turn.
      running = state.gcTurn(settings.interval)
        .then(async (turn) => {
          if (!turn) return;
          const report = await runGc(state, { ...settings, signal: abort.signal });
          logGcReport(report);
          settings.finished?.(report);
        })
        .catch((error) => {
          log.error("gc failed", { error });
          settings.finished?.("failed");
        })
        .finally(() => {
          running = undefined;
          if (!abort.signal.aborted) schedule();
        });
    }, settings.interval);
  };
  log.info("gc scheduled", {
    "gc.interval": formatDuration(settings.interval),
    "gc.grace": formatDuration(settings.grace),
    "gc.untagged": settings.untagged,
    "gc.upload_ttl": formatDuration(settings.uploadTtl),
  });
  schedule();
  return {
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await running;
    },
  };
}

/** The subject a revision record names, if it is readable and names one. */
function subjectOf(revision: Uint8Array): string | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(revision)) as Partial<Revision>;
    return typeof value?.subject === "string" ? value.subject : undefined;
  } catch {
    return undefined;
  }
}
