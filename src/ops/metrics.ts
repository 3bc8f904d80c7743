// Owns the registry's Prometheus metrics: their names, labels and help, and the text a scrape gets.
// Implements the Prometheus text exposition format through prom-client (with its process metrics).

import client from "prom-client";
import type { CacheStats } from "../store/cache.ts";
import { createHistogram, type Series } from "./histogram.ts";

/*
 * Label values are bounded by construction: routes are the route table's spec ids (never a raw
 * path or a repository name), methods a fixed set, statuses HTTP codes, drivers and operations
 * the driver contract's, endpoints the configured ones. Counts that need a walk of the store
 * (blobs, repositories, bytes) are gauges a GC or inventory pass sets, never work per scrape.
 */

/** Methods kept as label values; any other is counted as `other`. */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Request latency buckets (seconds): a cached manifest HEAD is well under a millisecond. */
const REQUEST_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  10,
  60,
];
const STORAGE_BUCKETS = [
  0.0001,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.5,
  1,
  5,
  30,
];
const GC_BUCKETS = [0.1, 1, 10, 60, 300, 1800, 3600];

export type AuthFailure = "bad_credentials" | "denied" | "rate_limited";

export interface InventoryCounts {
  repositories: number;
  blobs: number;
  bytes: number;
}

export interface GcOutcome {
  durationMs: number;
  dryRun: boolean;
  swept: { manifests: number; blobs: number; links: number; bytes: number };
  uploads: { expired: number; bytes: number };
}

/** What the rest of the registry records; each call is a few label lookups, no I/O. */
export interface Metrics {
  /** The scrape's body and its content type. */
  render(): Promise<{ body: string; contentType: string }>;
  /** For features that add their own metrics (a pull-through cache's hits by upstream). */
  registry: client.Registry;
  request(
    route: string,
    method: string,
    status: number,
    seconds: number,
    received: number,
    sent: number,
  ): void;
  inFlight(delta: 1 | -1): void;
  storage(driver: string, op: string, seconds: number, failed: boolean): void;
  /** The store's lookup cache, its counters read at each scrape. */
  cache(kind: string, stats: CacheStats): void;
  /** Reads the count at each scrape (a map's size, no I/O). */
  uploadsInProgress(count: () => number): void;
  authFailure(reason: AuthFailure): void;
  gcRun(outcome: GcOutcome | "failed"): void;
  inventory(counts: InventoryCounts): void;
  events: {
    written(endpoint: string, count: number): void;
    delivered(endpoint: string, count: number): void;
    failed(endpoint: string): void;
    dropped(endpoint: string, count: number): void;
    /** Pending events and the age (s) of the oldest, read at each scrape. */
    backlog(endpoint: string, read: () => { pending: number; oldestSeconds: number }): void;
  };
}

interface RequestSeries {
  /** Its latency histogram's series, whose count is the request count. */
  latency: Series;
  bytes: ByteSeries;
}

interface ByteSeries {
  labels: { route: string; method: string };
  received: number;
  sent: number;
}

interface StorageSeries {
  latency: Series;
  failures: number;
}

export interface MetricsOptions {
  /** prom-client's process metrics (RSS, open fds, event-loop lag, heap); default true. */
  processMetrics?: boolean;
}

/**
 * prom-client's process metrics, collected once per process: they describe the process, and
 * each collection keeps its own event-loop monitor running (a few ms of CPU a second) for good.
 */
let processRegistry: client.Registry | undefined;

function processMetrics(): client.Registry {
  if (!processRegistry) {
    processRegistry = new client.Registry();
    client.collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new client.Registry();
  const perProcess = options.processMetrics ?? true ? processMetrics() : undefined;
  const registers = [registry];

  // Hot paths add to plain numbers; counters copy them at each scrape (their `collect`), so a
  // request costs one histogram observation and a few additions.
  const requestSeries = new Map<string, RequestSeries>();
  const byteSeries = new Map<string, ByteSeries>();
  const storageSeries = new Map<string, StorageSeries>();
  let cache: { kind: string; stats: CacheStats } | undefined;
  let inFlightCount = 0;
  new client.Counter({
    name: "registry_http_requests_total",
    help: "HTTP requests answered, by route (the route table's spec id), method and status.",
    labelNames: ["route", "method", "status"],
    registers,
    collect() {
      this.reset();
      for (const { latency } of requestSeries.values()) this.inc(latency.labels, latency.count);
    },
  });
  const latency = createHistogram(registry, {
    name: "registry_http_request_duration_seconds",
    help: "Time from a request's arrival to its answer (headers), by route, method and status.",
    buckets: REQUEST_BUCKETS,
  });
  new client.Counter({
    name: "registry_http_request_body_bytes_total",
    help: "Request body bytes read, counted as they are read (chunked bodies too).",
    labelNames: ["route", "method"],
    registers,
    collect() {
      this.reset();
      for (const series of byteSeries.values()) this.inc(series.labels, series.received);
    },
  });
  new client.Counter({
    name: "registry_http_response_body_bytes_total",
    help: "Response body bytes answered (Content-Length; none for HEAD, 204, 304).",
    labelNames: ["route", "method"],
    registers,
    collect() {
      this.reset();
      for (const series of byteSeries.values()) this.inc(series.labels, series.sent);
    },
  });
  new client.Gauge({
    name: "registry_http_requests_in_flight",
    help: "Requests received and not yet answered.",
    registers,
    collect() {
      this.set(inFlightCount);
    },
  });
  new client.Counter({
    name: "registry_storage_operations_total",
    help: "Storage driver calls, by driver and operation.",
    labelNames: ["driver", "op"],
    registers,
    collect() {
      this.reset();
      for (const { latency } of storageSeries.values()) this.inc(latency.labels, latency.count);
    },
  });
  new client.Counter({
    name: "registry_storage_failures_total",
    help: "Storage driver calls that failed (not counting 'not found'), by driver and operation.",
    labelNames: ["driver", "op"],
    registers,
    collect() {
      this.reset();
      for (const series of storageSeries.values()) this.inc(series.latency.labels, series.failures);
    },
  });
  const storageLatency = createHistogram(registry, {
    name: "registry_storage_operation_duration_seconds",
    help: "Time a storage driver call took to resolve (a read: until its stream opened).",
    buckets: STORAGE_BUCKETS,
  });
  new client.Counter({
    name: "registry_cache_lookups_total",
    help:
      "Store lookup cache (tag, manifest, blob size, link): hits and misses, by what is looked up.",
    labelNames: ["kind", "result"],
    registers,
    collect() {
      this.reset();
      if (!cache) return;
      for (const [kind, count] of Object.entries(cache.stats.hits)) {
        this.inc({ kind, result: "hit" }, count);
      }
      for (const [kind, count] of Object.entries(cache.stats.misses)) {
        this.inc({ kind, result: "miss" }, count);
      }
    },
  });
  new client.Counter({
    name: "registry_cache_failures_total",
    help: "Lookups and updates of a shared cache (Redis) that failed and were served from storage.",
    registers,
    collect() {
      this.reset();
      if (cache) this.inc(cache.stats.failures);
    },
  });
  let uploadsCount = () => 0;
  new client.Gauge({
    name: "registry_uploads_in_progress",
    help: "Upload sessions this process started or received bytes for, not finished, cancelled " +
      "or idle past the upload TTL.",
    registers,
    collect() {
      this.set(uploadsCount());
    },
  });
  const authFailures = new client.Counter({
    name: "registry_auth_failures_total",
    help: "Refused requests: bad credentials (401 with credentials), denied (403), " +
      "rate-limited logins (429).",
    labelNames: ["reason"],
    registers,
  });
  const gcRuns = new client.Counter({
    name: "registry_gc_runs_total",
    help: "Online GC passes, by outcome (finished, failed).",
    labelNames: ["outcome"],
    registers,
  });
  const gcDuration = new client.Histogram({
    name: "registry_gc_duration_seconds",
    help: "Duration of finished online GC passes.",
    buckets: GC_BUCKETS,
    registers,
  });
  const gcLast = new client.Gauge({
    name: "registry_gc_last_run_timestamp_seconds",
    help: "When the last online GC pass finished (Unix time).",
    registers,
  });
  const gcObjects = new client.Counter({
    name: "registry_gc_freed_objects_total",
    help: "Objects GC deleted: manifests, blobs, layer links, expired upload sessions.",
    labelNames: ["kind"],
    registers,
  });
  const gcBytes = new client.Counter({
    name: "registry_gc_freed_bytes_total",
    help: "Bytes GC freed (blobs and expired uploads).",
    registers,
  });
  // Made at the first inventory: before it, a count of 0 would be a lie.
  let inventoryGauges: Record<keyof InventoryCounts | "at", client.Gauge> | undefined;
  const makeInventoryGauges = () => ({
    repositories: new client.Gauge({
      name: "registry_repositories",
      help: "Repositories holding manifests, as of the last inventory pass.",
      registers,
    }),
    blobs: new client.Gauge({
      name: "registry_blobs",
      help: "Blobs (layers, configs, manifests) in storage, as of the last inventory pass.",
      registers,
    }),
    bytes: new client.Gauge({
      name: "registry_stored_bytes",
      help: "Bytes of all blobs in storage, as of the last inventory pass.",
      registers,
    }),
    at: new client.Gauge({
      name: "registry_inventory_timestamp_seconds",
      help: "When the last inventory pass finished (Unix time).",
      registers,
    }),
  });
  const eventsWritten = new client.Counter({
    name: "registry_events_written_total",
    help: "Events written to an endpoint's outbox in storage.",
    labelNames: ["endpoint"],
    registers,
  });
  const eventsDelivered = new client.Counter({
    name: "registry_events_delivered_total",
    help: "Events an endpoint accepted (2xx or 3xx).",
    labelNames: ["endpoint"],
    registers,
  });
  const eventsFailed = new client.Counter({
    name: "registry_events_delivery_failures_total",
    help: "Delivery attempts an endpoint refused or did not answer in time.",
    labelNames: ["endpoint"],
    registers,
  });
  const eventsDropped = new client.Counter({
    name: "registry_events_dropped_total",
    help: "Events dropped undelivered, oldest first, because an outbox reached its bound.",
    labelNames: ["endpoint"],
    registers,
  });
  const backlogs = new Map<string, () => { pending: number; oldestSeconds: number }>();
  new client.Gauge({
    name: "registry_events_pending",
    help: "Events in an endpoint's outbox not yet delivered.",
    labelNames: ["endpoint"],
    registers,
    collect() {
      for (const [endpoint, read] of backlogs) this.set({ endpoint }, read().pending);
    },
  });
  new client.Gauge({
    name: "registry_events_oldest_pending_age_seconds",
    help: "Age of the oldest undelivered event of an endpoint (0 when none is pending).",
    labelNames: ["endpoint"],
    registers,
    collect() {
      for (const [endpoint, read] of backlogs) this.set({ endpoint }, read().oldestSeconds);
    },
  });

  return {
    registry,
    async render() {
      const own = await registry.metrics();
      const body = perProcess ? own + "\n" + await perProcess.metrics() : own;
      return { body, contentType: registry.contentType };
    },
    request(route, method, status, seconds, bodyIn, bodyOut) {
      const m = METHODS.has(method) ? method : "other";
      const key = `${route} ${m} ${status}`;
      let series = requestSeries.get(key);
      if (!series) {
        const short = `${route} ${m}`;
        let bytes = byteSeries.get(short);
        if (!bytes) {
          byteSeries.set(short, bytes = { labels: { route, method: m }, received: 0, sent: 0 });
        }
        const labels = () => ({ route, method: m, status: String(status) });
        series = { latency: latency.series(key, labels), bytes };
        requestSeries.set(key, series);
      }
      series.bytes.received += bodyIn;
      series.bytes.sent += bodyOut;
      latency.observe(series.latency, seconds);
    },
    inFlight(delta) {
      inFlightCount += delta;
    },
    storage(driver, op, seconds, failed) {
      const key = `${driver} ${op}`;
      let series = storageSeries.get(key);
      if (!series) {
        const labels = () => ({ driver, op });
        storageSeries.set(
          key,
          series = { latency: storageLatency.series(key, labels), failures: 0 },
        );
      }
      if (failed) series.failures++;
      storageLatency.observe(series.latency, seconds);
    },
    cache(kind, stats) {
      cache = { kind, stats };
    },
    uploadsInProgress(count) {
      uploadsCount = count;
    },
    authFailure: (reason) => authFailures.inc({ reason }),
    gcRun(outcome) {
      if (outcome === "failed") {
        gcRuns.inc({ outcome: "failed" });
        return;
      }
      gcRuns.inc({ outcome: "finished" });
      gcDuration.observe(outcome.durationMs / 1000);
      gcLast.set(Date.now() / 1000);
      if (outcome.dryRun) return;
      gcObjects.inc({ kind: "manifests" }, outcome.swept.manifests);
      gcObjects.inc({ kind: "blobs" }, outcome.swept.blobs);
      gcObjects.inc({ kind: "links" }, outcome.swept.links);
      gcObjects.inc({ kind: "uploads" }, outcome.uploads.expired);
      gcBytes.inc(outcome.swept.bytes + outcome.uploads.bytes);
    },
    inventory(counts) {
      inventoryGauges ??= makeInventoryGauges();
      inventoryGauges.repositories.set(counts.repositories);
      inventoryGauges.blobs.set(counts.blobs);
      inventoryGauges.bytes.set(counts.bytes);
      inventoryGauges.at.set(Date.now() / 1000);
    },
    events: {
      written: (endpoint, count) => eventsWritten.inc({ endpoint }, count),
      delivered: (endpoint, count) => eventsDelivered.inc({ endpoint }, count),
      failed: (endpoint) => eventsFailed.inc({ endpoint }),
      dropped: (endpoint, count) => eventsDropped.inc({ endpoint }, count),
      backlog(endpoint, read) {
        backlogs.set(endpoint, read);
        // Present from the start, so a rate() over them has a first sample.
        for (const counter of [eventsWritten, eventsDelivered, eventsFailed, eventsDropped]) {
          counter.inc({ endpoint }, 0);
        }
      },
    },
  };
}
