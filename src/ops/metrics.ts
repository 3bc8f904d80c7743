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

type Labels = Record<string, string>;
/** A metric's values with their labels, read at a scrape. */
type Read = () => Iterable<[Labels, number]>;

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

  // Hot paths add to plain numbers; counters copy them at each scrape (read), so a request
  // costs one histogram observation and a few additions.
  const requestSeries = new Map<string, RequestSeries>();
  const byteSeries = new Map<string, ByteSeries>();
  const storageSeries = new Map<string, StorageSeries>();
  let cache: { kind: string; stats: CacheStats } | undefined;
  let inFlightCount = 0;
  let uploadsCount = () => 0;
  const backlogs = new Map<string, () => { pending: number; oldestSeconds: number }>();

  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new client.Counter({ name, help, labelNames, registers });
  const gauge = (name: string, help: string) => new client.Gauge({ name, help, registers });
  /** A counter whose values `read` gives at each scrape, all of them. */
  const countedAtScrape = (name: string, help: string, labelNames: string[], read: Read) =>
    new client.Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  /** A gauge whose values `read` gives at each scrape, all of them. */
  const gaugedAtScrape = (name: string, help: string, labelNames: string[], read: Read) =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  const each = <T>(values: Iterable<T>, pick: (value: T) => [Labels, number]) =>
    Array.from(values, pick);

  countedAtScrape(
    "registry_http_requests_total",
    "HTTP requests answered, by route (the route table's spec id), method and status.",
    ["route", "method", "status"],
    () => each(requestSeries.values(), ({ latency }) => [latency.labels, latency.count]),
  );
  const latency = createHistogram(registry, {
    name: "registry_http_request_duration_seconds",
    help: "Time from a request's arrival to its answer (headers), by route, method and status.",
    buckets: REQUEST_BUCKETS,
  });
  countedAtScrape(
    "registry_http_request_body_bytes_total",
    "Request body bytes read, counted as they are read (chunked bodies too).",
    ["route", "method"],
    () => each(byteSeries.values(), (series) => [series.labels, series.received]),
  );
  countedAtScrape(
    "registry_http_response_body_bytes_total",
    "Response body bytes answered (Content-Length; none for HEAD, 204, 304).",
    ["route", "method"],
    () => each(byteSeries.values(), (series) => [series.labels, series.sent]),
  );
  gaugedAtScrape(
    "registry_http_requests_in_flight",
    "Requests received and not yet answered.",
    [],
    () => [[{}, inFlightCount]],
  );
  countedAtScrape(
    "registry_storage_operations_total",
    "Storage driver calls, by driver and operation.",
    ["driver", "op"],
    () => each(storageSeries.values(), ({ latency }) => [latency.labels, latency.count]),
  );
  countedAtScrape(
    "registry_storage_failures_total",
    "Storage driver calls that failed (not counting 'not found'), by driver and operation.",
    ["driver", "op"],
    () => each(storageSeries.values(), (series) => [series.latency.labels, series.failures]),
  );
  const storageLatency = createHistogram(registry, {
    name: "registry_storage_operation_duration_seconds",
    help: "Time a storage driver call took to resolve (a read: until its stream opened).",
    buckets: STORAGE_BUCKETS,
  });
  countedAtScrape(
    "registry_cache_lookups_total",
    "Store lookup cache (tag, manifest, blob size, link): hits and misses, by what is looked up.",
    ["kind", "result"],
    () =>
      cache
        ? [
          ...each(Object.entries(cache.stats.hits), ([kind, n]) => [{ kind, result: "hit" }, n]),
          ...each(Object.entries(cache.stats.misses), ([kind, n]) => [{ kind, result: "miss" }, n]),
        ]
        : [],
  );
  countedAtScrape(
    "registry_cache_failures_total",
    "Lookups and updates of a shared cache (Redis) that failed and were served from storage.",
    [],
    () => cache ? [[{}, cache.stats.failures]] : [],
  );
  gaugedAtScrape(
    "registry_uploads_in_progress",
    "Upload sessions this process started or received bytes for, not finished, cancelled " +
      "or idle past the upload TTL.",
    [],
    () => [[{}, uploadsCount()]],
  );
  const authFailures = counter(
    "registry_auth_failures_total",
    "Refused requests: bad credentials (401 with credentials), denied (403), " +
      "rate-limited logins (429).",
    ["reason"],
  );
  const gcRuns = counter(
    "registry_gc_runs_total",
    "Online GC passes, by outcome (finished, failed).",
    ["outcome"],
  );
  const gcDuration = new client.Histogram({
    name: "registry_gc_duration_seconds",
    help: "Duration of finished online GC passes.",
    buckets: GC_BUCKETS,
    registers,
  });
  const gcLast = gauge(
    "registry_gc_last_run_timestamp_seconds",
    "When the last online GC pass finished (Unix time).",
  );
  const gcObjects = counter(
    "registry_gc_freed_objects_total",
    "Objects GC deleted: manifests, blobs, layer links, expired upload sessions.",
    ["kind"],
  );
  const gcBytes = counter(
    "registry_gc_freed_bytes_total",
    "Bytes GC freed (blobs and expired uploads).",
  );
  // Made at the first inventory: before it, a count of 0 would be a lie.
  let inventoryGauges: Record<keyof InventoryCounts | "at", client.Gauge> | undefined;
  const makeInventoryGauges = () => ({
    repositories: gauge(
      "registry_repositories",
      "Repositories holding manifests, as of the last inventory pass.",
    ),
    blobs: gauge(
      "registry_blobs",
      "Blobs (layers, configs, manifests) in storage, as of the last inventory pass.",
    ),
    bytes: gauge(
      "registry_stored_bytes",
      "Bytes of all blobs in storage, as of the last inventory pass.",
    ),
    at: gauge(
      "registry_inventory_timestamp_seconds",
      "When the last inventory pass finished (Unix time).",
    ),
  });
  const eventsWritten = counter(
    "registry_events_written_total",
    "Events written to an endpoint's outbox in storage.",
    ["endpoint"],
  );
  const eventsDelivered = counter(
    "registry_events_delivered_total",
    "Events an endpoint accepted (2xx or 3xx).",
    ["endpoint"],
  );
  const eventsFailed = counter(
    "registry_events_delivery_failures_total",
    "Delivery attempts an endpoint refused or did not answer in time.",
    ["endpoint"],
  );
  const eventsDropped = counter(
    "registry_events_dropped_total",
    "Events dropped undelivered, oldest first, because an outbox reached its bound.",
    ["endpoint"],
  );
  gaugedAtScrape(
    "registry_events_pending",
    "Events in an endpoint's outbox not yet delivered.",
    ["endpoint"],
    () => each(backlogs, ([endpoint, read]) => [{ endpoint }, read().pending]),
  );
  gaugedAtScrape(
    "registry_events_oldest_pending_age_seconds",
    "Age of the oldest undelivered event of an endpoint (0 when none is pending).",
    ["endpoint"],
    () => each(backlogs, ([endpoint, read]) => [{ endpoint }, read().oldestSeconds]),
  );

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
