// Owns webhook notifications: the tap that stores a request's events before it is answered, and the
// outboxes that deliver them. Implements distribution's notifications, durable (src/ops/events/outbox.ts).

import type { Tap } from "../../exchange.ts";
import { log } from "../../log.ts";
import type { StorageDriver } from "../../storage/driver.ts";
import { EVENTS } from "../../storage/paths.ts";
import type { Metrics } from "../metrics.ts";
import { eventsOf, type EventSource } from "./event.ts";
import { createOutbox, type Outbox } from "./outbox.ts";
import { type NotifySettings, wants } from "./settings.ts";

export interface Notifier {
  /**
   * Sits at the app's seam (route spec, method, status), so every way content is served passes
   * it: the API handlers, and a pull-through cache wrapping the store.
   */
  tap: Tap;
  /** Starts delivery; `source` names this node in every event. */
  start(source: Omit<EventSource, "instanceID">): void;
  stop(): Promise<void>;
}

export interface NotifierOptions {
  /** The guarded driver: a failing store fails the request (503) rather than lose its event. */
  driver: StorageDriver;
  settings: NotifySettings;
  metrics?: Metrics;
  /** Other instances write the same outboxes (S3): re-list them. */
  sharedStorage?: boolean;
}

/** How often outboxes are re-listed on shared storage (ms). */
const RELIST_EVERY = 30_000;

export function createNotifier(options: NotifierOptions): Notifier {
  const { driver, settings, metrics } = options;
  const instanceID = crypto.randomUUID();
  const instance = instanceID.replaceAll("-", "").slice(0, 8);
  let source: EventSource = { addr: "", instanceID };
  const outboxes: { endpoint: NotifySettings["endpoints"][number]; outbox: Outbox }[] = settings
    .endpoints.map((endpoint) => ({
      endpoint,
      outbox: createOutbox({
        driver,
        endpoint,
        metrics,
        maxPending: settings.maxPending,
        relistEvery: options.sharedStorage ? RELIST_EVERY : 0,
        instance,
      }),
    }));
  return {
    tap: {
      async beforeAnswer(exchange, response) {
        if (response.status >= 300 || !exchange.ctx) return;
        const events = await eventsOf(exchange, response, source);
        if (events.length === 0) return;
        await Promise.all(
          outboxes.map(({ endpoint, outbox }) =>
            outbox.add(events.filter((stored) => wants(endpoint, stored.event)))
          ),
        );
      },
    },
    start(node) {
      source = { ...node, instanceID };
      for (const { outbox } of outboxes) outbox.start();
      warnOrphans(driver, new Set(settings.endpoints.map((e) => e.name)));
      log.info("notifications on", {
        "events.endpoints": settings.endpoints.map((e) => `${e.name} ${withoutSecrets(e.url)}`)
          .join(", "),
        "events.max_pending": settings.maxPending,
      });
    },
    async stop() {
      await Promise.all(outboxes.map(({ outbox }) => outbox.stop()));
    },
  };
}

/** Outboxes of endpoints no longer configured are kept (rename one back to deliver them). */
function warnOrphans(driver: StorageDriver, configured: Set<string>): void {
  driver.list(EVENTS).then((names) => {
    for (const name of names) {
      if (!configured.has(name)) {
        log.warn("events outbox of an endpoint no longer configured, kept", {
          "events.endpoint": name,
        });
      }
    }
  }, () => {});
}

/** A URL for the logs: no credentials, no query (tokens travel there). */
function withoutSecrets(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}
