// Owns the UI's storage page: usage and a GC dry run, computed once at a time and kept for a while.
// No spec section: reads src/maintenance/usage.ts and src/maintenance/gc.ts (dry run) through the store.

import { type Context, json } from "../http.ts";

/** Rows of the largest repositories and most shared blobs the page lists. */
const TOP = 20;

/**
 * GET /ui/api/storage?fresh=1 — usage of the repositories the caller may list: their sizes,
 * blobs shared between them and what sharing saves. The registry-wide figures (every stored
 * blob, the GC dry run) are shown only to a caller who may list every repository.
 */
export async function storageReport(ctx: Context): Promise<Response> {
  const fresh = ctx.url.searchParams.get("fresh") === "1";
  const { usage, gc } = await ctx.ui!.storage.get(fresh);
  const listed = (name: string) => ctx.access?.canList(name) ?? true;
  const repositories = usage.repositories.filter((repository) => listed(repository.name));
  const everything = repositories.length === usage.repositories.length;
  let linkedBytes = 0;
  let uniqueBytes = 0;
  let uniqueBlobs = 0;
  const shared = [];
  for (const blob of usage.linked) {
    const visible = everything ? blob.repositories : blob.repositories.filter(listed);
    if (visible.length === 0) continue;
    uniqueBlobs++;
    uniqueBytes += blob.size;
    linkedBytes += blob.size * visible.length;
    if (visible.length > 1) {
      shared.push({
        digest: blob.digest,
        size: blob.size,
        repositories: visible.length,
        names: visible.slice(0, 5),
        saved: blob.size * (visible.length - 1),
      });
    }
  }
  shared.sort((a, b) => b.saved - a.saved || (a.digest < b.digest ? -1 : 1));
  return json({
    computedAt: usage.computedAt,
    durationMs: usage.durationMs + gc.durationMs,
    repositories: repositories.length,
    blobs: uniqueBlobs,
    linkedBytes,
    uniqueBytes,
    savedBytes: linkedBytes - uniqueBytes,
    sharedBlobs: shared.length,
    largest: [...repositories].sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1))
      .slice(0, TOP),
    mostShared: shared.slice(0, TOP),
    registry: everything
      ? {
        stored: usage.stored,
        gc: {
          manifests: gc.swept.manifests,
          blobs: gc.swept.blobs,
          bytes: gc.swept.bytes,
          uploads: gc.uploads.expired,
          uploadBytes: gc.uploads.bytes,
          spared: gc.spared,
          skipped: gc.skipped,
          untagged: ctx.ui!.gc.untagged,
          grace: ctx.ui!.gc.grace,
          interval: ctx.ui!.gc.interval,
        },
      }
      : undefined,
  });
}
