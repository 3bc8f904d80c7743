// Owns the web UI's per-server state (settings, caches, the storage report, signed-out sessions),
// the types its modules share, and its response headers. Imports nothing of HTTP (no cycles).

import { createLru, type Lru } from "../cache.ts";
import { createMemoryRevocations, type Revocations } from "../revocations.ts";
import { log } from "../log.ts";
import { type GcLoopSettings, type GcReport, runGc } from "../maintenance/gc.ts";
import { measureUsage, type StorageUsage } from "../maintenance/usage.ts";
import type { Store } from "../store/store.ts";
import type { TarEntry } from "./tar.ts";

/** An image config's parts the UI shows (config.md); everything optional, as stored ones vary. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    WorkingDir?: string;
    User?: string;
    ExposedPorts?: Record<string, unknown> | null;
    Volumes?: Record<string, unknown> | null;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
  };
  history?: {
    created?: string;
    created_by?: string;
    comment?: string;
    author?: string;
    empty_layer?: boolean;
  }[];
}

export type Compression = "gzip" | "zstd" | "none";

export interface FileListing {
  digest: string;
  /** The blob's stored (compressed) size. */
  size: number;
  compression: Compression;
  entries: (TarEntry & { whiteout?: boolean })[];
  /** Uncompressed bytes read to list them. */
  scanned: number;
  /** Set when a limit stopped the listing before the archive's end. */
  truncated?: "entries" | "bytes";
  limits: { entries: number; bytes: number };
}

/** A finished computation is served this long (ms); a refresh inside it waits for nothing new. */
const FRESH_MS = 60_000;
/** A refresh asked for sooner than this after the last start reuses it (ms). */
const MIN_INTERVAL_MS = 5_000;
export interface StorageReport {
  usage: StorageUsage;
  gc: GcReport;
}

export interface StorageCache {
  /** The latest report, computing one when there is none or it is stale (or `fresh`). */
  get(fresh: boolean): Promise<StorageReport>;
}

export function createStorageCache(
  store: Store,
  gc: { grace: number; untagged: boolean; uploadTtl: number },
): StorageCache {
  let latest: { at: number; report: Promise<StorageReport> } | undefined;
  const compute = async (): Promise<StorageReport> => {
    // The dry run first: it takes GC's lock, so it never overlaps a real pass.
    const gcReport = await runGc(store.state, { ...gc, dryRun: true });
    const usage = await measureUsage(store.state);
    log.info("ui storage measured", {
      "storage.blobs": usage.stored.blobs,
      "storage.bytes": usage.stored.bytes,
      "duration_ms": usage.durationMs + gcReport.durationMs,
    });
    return { usage, gc: gcReport };
  };
  return {
    get(fresh) {
      const now = Date.now();
      const age = latest ? now - latest.at : Infinity;
      if (age > FRESH_MS || (fresh && age > MIN_INTERVAL_MS)) {
        const report = compute();
        latest = { at: now, report };
        report.catch(() => {
          if (latest?.report === report) latest = undefined;
        });
      }
      return latest!.report;
    },
  };
}

/** What the server tells the UI about itself. */
export interface UiOptions {
  /** The GC settings the storage page's dry run uses (the command line's). */
  gc?: GcLoopSettings;
  /** Clock for sessions (tests). */
  now?: () => number;
  /** Sign-outs shared with other instances (src/redis/revocations.ts); default this process's. */
  signedOut?: Revocations;
}

export interface Ui {
  gc: GcLoopSettings;
  now: () => number;
  /** Image configs by digest: content-addressed, so an entry never goes stale. */
  configs: Lru<ImageConfig>;
  /** Layer file listings by digest (immutable too), bounded by their entry counts. */
  listings: Lru<FileListing>;
  /** Per-repository figures for listings, kept briefly: `name` → when computed and what. */
  summaries: Lru<{ at: number; value: unknown }>;
  /** Layer listings running now (each decompresses a whole layer: bounded). */
  listingsRunning: { count: number };
  storage: StorageCache;
  /** Sessions signed out before their expiry. */
  signedOut: Revocations;
}

export function createUi(store: Store, options: UiOptions = {}): Ui {
  const gc = options.gc ?? {
    interval: 0,
    grace: 3_600_000,
    untagged: false,
    uploadTtl: store.state.uploadTtl,
  };
  const now = options.now ?? Date.now;
  return {
    gc,
    now,
    configs: createLru(2_000, 16 * 1024 * 1024),
    listings: createLru(16, 64 * 1024 * 1024),
    summaries: createLru(20_000),
    listingsRunning: { count: 0 },
    storage: createStorageCache(store, gc),
    signedOut: options.signedOut ?? createMemoryRevocations(now),
  };
}

/**
 * The UI's page and scripts come from this origin only: no inline script or style, no framing,
 * no plugins; fetches go back to this origin. Set on every UI response, errors included.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function setUiHeaders(headers: Headers): void {
  headers.set("content-security-policy", CONTENT_SECURITY_POLICY);
  headers.set("x-content-type-options", "nosniff");
  headers.set("x-frame-options", "DENY");
  headers.set("referrer-policy", "same-origin");
  headers.set("cross-origin-opener-policy", "same-origin");
  headers.set("cross-origin-resource-policy", "same-origin");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
}
