// Owns webhook notifications: the tap that stores a request's events before it is answered, and the
// outboxes that deliver them. Implements distribution's notifications, durable (src/ops/events/outbox.ts).

import type { Tap } from "../../exchange.ts";
import { log } from "../../log.ts";
import type { StorageDriver } from "../../storage/driver.ts";
import { EVENTS } from "../../storage/paths.ts";
import type { Metrics } from "../metrics.ts";
import { eventsOf, type EventSource } from "./event.ts";
import { createOutbox, type Outbox } from "./outbox.ts";
import { type EndpointSettings, type NotifySettings, wants } from "./settings.ts";

export interface Notifier {
  /**
   * Sits at the app's seam (route spec, method, status), so every way content is served passes
   * it: the API handlers, and a pull-through cache wrapping the store.
   */
  tap: Tap;
  /** Starts delivery; `source` names this node in every event. */
  start(source: Omit<EventSource, "instanceID">): void;
  /**
   * Endpoints anew (a reload): resolves to the switch that puts them in force. An endpoint whose
   * settings did not change keeps its outbox as it runs; a changed one takes over its outbox's
   * stored events once the old delivery has stopped; a removed one's events stay stored.
   */
  prepare(settings: NotifySettings): () => void;
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

interface Running {
  endpoint: EndpointSettings;
  /** Its settings as text: an endpoint whose text is unchanged keeps its outbox on a reload. */
  key: string;
  outbox: Outbox;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const { driver, metrics } = options;
  const instanceID = crypto.randomUUID();
  const instance = instanceID.replaceAll("-", "").slice(0, 8);
  let source: EventSource = { addr: "", instanceID };
  let started = false;
  const open = (endpoint: EndpointSettings, maxPending: number): Running => ({
    endpoint,
    key: settingsKey(endpoint, maxPending),
    outbox: createOutbox({
      driver,
      endpoint,
      metrics,
      maxPending,
      relistEvery: options.sharedStorage ? RELIST_EVERY : 0,
      instance,
    }),
  });
  let settings = options.settings;
  let running = settings.endpoints.map((endpoint) => open(endpoint, settings.maxPending));
  const announce = () => {
    if (settings.endpoints.length === 0) return;
    warnOrphans(driver, new Set(settings.endpoints.map((e) => e.name)));
    log.info("notifications on", {
      "events.endpoints": settings.endpoints.map((e) => `${e.name} ${withoutSecrets(e.url)}`)
        .join(", "),
      "events.max_pending": settings.maxPending,
    });
  };
  return {
    tap: {
      async beforeAnswer(exchange, response) {
        // Read once: a reload between here and the write does not split one request's events.
        const outboxes = running;
        if (outboxes.length === 0 || response.status >= 300 || !exchange.ctx) return;
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
      started = true;
      for (const { outbox } of running) outbox.start();
      announce();
    },
    prepare(next) {
      const previous = new Map(running.map((entry) => [entry.endpoint.name, entry]));
      const entries = next.endpoints.map((endpoint) => {
        const kept = previous.get(endpoint.name);
        return kept?.key === settingsKey(endpoint, next.maxPending)
          ? kept
          : open(endpoint, next.maxPending);
      });
      return () => {
        const gone = running.filter((old) => !entries.includes(old));
        settings = next;
        running = entries;
        if (!started) return;
        // One delivery per outbox folder at a time: a new one starts once the old has stopped.
        const stopping = new Map(gone.map((old) => [old.endpoint.name, old.outbox.stop()]));
        for (const entry of entries) {
          if (previous.get(entry.endpoint.name) === entry) continue;
          const before = stopping.get(entry.endpoint.name) ?? Promise.resolve();
          before.then(() => {
            if (running.includes(entry)) entry.outbox.start();
          });
        }
        announce();
      };
    },
    async stop() {
      await Promise.all(running.map(({ outbox }) => outbox.stop()));
    },
  };
}

/** An endpoint's settings (and the outbox bound) as comparable text; filters hold Sets and RegExps. */
function settingsKey(endpoint: EndpointSettings, maxPending: number): string {
  return JSON.stringify({ endpoint, maxPending }, (_key, value) => {
    if (value instanceof Set) return [...value];
    if (value instanceof RegExp) return String(value);
    return value;
  });
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
