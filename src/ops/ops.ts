// Owns how operations features wrap the registry: metrics around the driver, the store and the app,
// health, events, access/audit logs and tracing as taps, the metrics listener, and their lifecycle.

import type { Tap } from "../exchange.ts";
import type { Ops } from "../http.ts";
import { log } from "../log.ts";
import type { StorageDriver } from "../storage/driver.ts";
import type { Store } from "../store/store.ts";
import { accessLog, openAuditLog } from "./access_log.ts";
import { opsApp } from "./endpoints.ts";
import { createHealth, type HealthOptions } from "./health.ts";
import { instrumentDriver, instrumentStore, requestMetrics } from "./instrument.ts";
import { takeInventory } from "./inventory.ts";
import { createMetrics, type GcOutcome } from "./metrics.ts";
import { createNotifier } from "./events/notifier.ts";
import { DEFAULTS, type NotifySettings, notifySettings } from "./events/settings.ts";
import type { Config } from "../config.ts";
import { traceTap } from "./trace.ts";

/** A count older than this (ms) is taken again at the next scrape. */
const INVENTORY_MAX_AGE = 3_600_000;

export interface OpsSettings {
  /** Prometheus metrics (default on); off, nothing is counted and /metrics is 404. */
  metrics?: boolean;
  /** Serve /metrics (and the probes) on their own listener instead of the main port. */
  metricsAddr?: { hostname: string; port: number };
  /** Webhook endpoints; absent or empty: no events are made. */
  notify?: NotifySettings;
  /** `--audit-log FILE`. */
  auditLog?: string;
  /** W3C traceparent taken from requests (or started), logged and sent with events. */
  traceparent?: boolean;
  health?: HealthOptions;
  /**
   * Count repositories, blobs and bytes (default on): in the background at the first scrape,
   * when the last count is an hour old, and after each GC pass; never during a scrape.
   */
  inventory?: boolean;
}

/** The settings of the command line, with the --notify-config file read and checked. */
export async function opsSettings(
  config: Pick<
    Config,
    "metrics" | "metricsAddr" | "notify" | "notifyConfig" | "auditLog" | "traceparent" | "sections"
  >,
): Promise<OpsSettings> {
  const path = config.notifyConfig;
  const text = path === undefined ? undefined : await Deno.readTextFile(path).catch((error) => {
    throw new Error(`notify config ${path}: ${(error as Error).message}`);
  });
  const notify = notifySettings(
    config.notify,
    path === undefined ? undefined : { path, text: text! },
    config.sections.notifications,
  );
  return {
    metrics: config.metrics,
    metricsAddr: config.metricsAddr,
    notify,
    auditLog: config.auditLog,
    traceparent: config.traceparent,
  };
}

export interface RunningOps {
  /** The store, built on the instrumented driver and wrapped for metrics. */
  store: Store;
  taps: Tap[];
  routes: Ops;
  /** Starts event delivery and the metrics listener; `port` is the main one. */
  start(port: number): Promise<void>;
  /** The metrics listener's URL, once started with --metrics-addr. */
  metricsUrl?: string;
  /** Hears each online GC pass's outcome. */
  gcFinished(outcome: GcOutcome | "failed"): void;
  /** For a reload: the notification endpoints `next` names, and the switch to them. */
  prepareNotifications(next: Config): Promise<() => void>;
  /** Readiness turns 503 from now on. */
  stopping(): void;
  stop(): Promise<void>;
}

/**
 * Wraps the seams: the storage driver (metrics; failures wake the readiness probe), the store
 * `openStore` builds on it (cache and upload gauges), and the app (taps). Opens the audit log.
 */
export async function startOps(
  settings: OpsSettings,
  driver: StorageDriver,
  openStore: (driver: StorageDriver) => Store,
  sharedStorage: boolean,
): Promise<RunningOps> {
  const metrics = settings.metrics === false ? undefined : createMetrics();
  const health = createHealth(driver, settings.health);
  const store = metrics
    ? instrumentStore(openStore(instrumentDriver(driver, metrics, () => health.suspect())), metrics)
    : openStore(driver);
  // Always there, so that a reload may add endpoints; with none it only reads a list per request.
  const notifier = createNotifier({
    driver: store.state.driver,
    settings: settings.notify ?? { endpoints: [], maxPending: DEFAULTS.maxPending },
    metrics,
    sharedStorage,
  });
  const audit = settings.auditLog === undefined ? undefined : await openAuditLog(settings.auditLog);
  const taps: Tap[] = [
    ...settings.traceparent ? [traceTap()] : [],
    notifier.tap,
    ...metrics ? [requestMetrics(metrics)] : [],
    accessLog(),
    ...audit ? [audit] : [],
  ];

  const inventoryStop = new AbortController();
  let inventory: Promise<void> | undefined;
  let countedAt = 0;
  const countStore = () => {
    if (!metrics || settings.inventory === false || inventory || inventoryStop.signal.aborted) {
      return;
    }
    countedAt = Date.now();
    inventory = takeInventory(store.state.driver, inventoryStop.signal)
      .then((counts) => counts && metrics.inventory(counts))
      .catch((error) => log.error("inventory failed", { error }))
      .finally(() => inventory = undefined);
  };
  // Scrapes start the inventory when there is none or it is old; they never wait for it.
  const scraped = metrics && {
    ...metrics,
    render() {
      if (Date.now() - countedAt >= INVENTORY_MAX_AGE) countStore();
      return metrics.render();
    },
  };
  const routes: Ops = { health, metrics: settings.metricsAddr ? undefined : scraped };

  let listener: Deno.HttpServer | undefined;
  const running: RunningOps = {
    store,
    taps,
    routes,
    async start(port) {
      notifier.start({ addr: `${Deno.hostname()}:${port}` });
      if (settings.metricsAddr && metrics) {
        const listening = Promise.withResolvers<Deno.NetAddr>();
        listener = Deno.serve({
          hostname: settings.metricsAddr.hostname,
          port: settings.metricsAddr.port,
          onListen: listening.resolve,
        }, opsApp({ health, metrics: scraped }));
        const address = await listening.promise;
        const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
        running.metricsUrl = `http://${host}:${address.port}`;
        log.info("metrics listening", { "url.full": `${running.metricsUrl}/metrics` });
      }
    },
    async prepareNotifications(next) {
      return notifier.prepare((await opsSettings(next)).notify!);
    },
    gcFinished(outcome) {
      metrics?.gcRun(outcome);
      if (outcome !== "failed" && !outcome.dryRun && countedAt > 0) countStore();
    },
    stopping: () => health.stopping(),
    async stop() {
      health.stopping();
      inventoryStop.abort();
      await Promise.all([health.stop(), notifier.stop(), inventory, listener?.shutdown()]);
      await audit?.close();
    },
  };
  return running;
}
