// Owns one endpoint's outbox: events stored before their request is answered, delivered in order.
// Implements at-least-once delivery: a batch is deleted only once the endpoint accepted it.

import { NotFoundError, type StorageDriver } from "../../storage/driver.ts";
import { eventBatchPath, eventsPath } from "../../storage/paths.ts";
import { log } from "../../log.ts";
import type { Metrics } from "../metrics.ts";
import { EVENTS_MEDIA_TYPE, type StoredEvent } from "./event.ts";
import type { EndpointSettings } from "./settings.ts";

/*
 * Layout: `_events/<endpoint>/<ms:13>-<seq:10>-<instance:8>-<count>`, one object per batch,
 * `{"events":[{event, traceparent?}, …]}`. Names sort oldest first (the time, then this process's
 * sequence), and carry their event count, so one listing at start gives the order and the size.
 *
 * Writes are group commits: a request's events join the batch being gathered while the previous
 * write is in flight, so concurrent requests share one write (and one flush on fs). `add`
 * resolves once its batch is stored, and the request is answered only then.
 *
 * Delivery reads the oldest batch, posts its events `batch` at a time, waits and doubles the wait
 * (up to maxBackoff) while the endpoint refuses, and deletes the batch once every event of it was
 * accepted. A crash or kill -9 between an accepted post and that delete delivers those events
 * again after the restart, with the same ids: at least once. Bounded: past `maxPending` events
 * the oldest batches are deleted undelivered, counted and logged.
 *
 * Several instances on shared storage (S3) each write their own batches and re-list the folder
 * (every `relistEvery`), so every instance delivers every batch: order holds per instance, and
 * a batch two instances post at once reaches the endpoint twice, with the same ids.
 */

export interface OutboxOptions {
  driver: StorageDriver;
  endpoint: EndpointSettings;
  metrics?: Metrics;
  maxPending: number;
  /** Re-list the folder this often (ms) for batches other instances wrote; 0: never. */
  relistEvery?: number;
  /** Distinguishes this process's batch names from another's written in the same millisecond. */
  instance: string;
}

export interface Outbox {
  /** Stores events for delivery; resolves once they are in storage. */
  add(events: StoredEvent[]): Promise<void>;
  /** Lists what earlier runs left, then delivers until stopped. */
  start(): void;
  /** Stops delivering (an attempt in flight is abandoned: its events stay stored). */
  stop(): Promise<void>;
  /** Undelivered events and the age of the oldest (seconds). */
  backlog(): { pending: number; oldestSeconds: number };
}

interface Batch {
  name: string;
  count: number;
  /** ms since the epoch, from the name. */
  at: number;
  /** Deleted undelivered by the bound. */
  dropped?: boolean;
}

/** Events written in one batch at most (more wait for the next write). */
const MAX_BATCH_EVENTS = 100;
const BATCH_NAME = /^(\d{13})-(\d{10})-([0-9a-f]{8})-(\d+)$/;

export function parseBatchName(name: string): Batch | undefined {
  const match = BATCH_NAME.exec(name);
  return match ? { name, at: Number(match[1]), count: Number(match[4]) } : undefined;
}

export function createOutbox(options: OutboxOptions): Outbox {
  const { driver, endpoint, metrics, maxPending, instance } = options;
  const label = endpoint.name;
  /** Stored batches, oldest first; [0] is the one being delivered. */
  const queue: Batch[] = [];
  let pending = 0;
  let lastAt = 0;
  let sequence = 0;
  let stopped = false;
  let running: Promise<void> | undefined;
  const abort = new AbortController();
  let wake: (() => void) | undefined;
  const signal = () => {
    wake?.();
    wake = undefined;
  };

  // ---- writing

  const gathering: { events: StoredEvent[]; done: PromiseWithResolvers<void> }[] = [];
  let writing: Promise<void> | undefined;

  const nextName = (count: number) => {
    lastAt = Math.max(lastAt, Date.now());
    sequence++;
    return `${String(lastAt).padStart(13, "0")}-${
      String(sequence).padStart(10, "0")
    }-${instance}-${count}`;
  };

  const insert = (batch: Batch) => {
    // Ours are the newest; what a listing finds (another instance's) may belong anywhere.
    let at = queue.length;
    while (at > 0 && queue[at - 1].name > batch.name) at--;
    queue.splice(at, 0, batch);
    pending += batch.count;
  };

  const enforceBound = async () => {
    let dropped = 0;
    while (pending > maxPending && queue.length > 1) {
      const oldest = queue.shift()!;
      oldest.dropped = true;
      pending -= oldest.count;
      dropped += oldest.count;
      await driver.delete(eventBatchPath(label, oldest.name)).catch((error) =>
        log.error("events outbox: dropping a batch failed", { "events.endpoint": label, error })
      );
    }
    if (dropped > 0) {
      metrics?.events.dropped(label, dropped);
      log.warn("events dropped: outbox full", {
        "events.endpoint": label,
        "events.dropped": dropped,
        "events.max_pending": maxPending,
      });
    }
  };

  const drain = async () => {
    while (gathering.length > 0) {
      const groups: typeof gathering = [];
      let count = 0;
      while (
        gathering.length > 0 &&
        (groups.length === 0 || count + gathering[0].events.length <= MAX_BATCH_EVENTS)
      ) {
        const group = gathering.shift()!;
        groups.push(group);
        count += group.events.length;
      }
      const events = groups.flatMap((group) => group.events);
      const name = nextName(events.length);
      try {
        await driver.put(
          eventBatchPath(label, name),
          new TextEncoder().encode(JSON.stringify({ events })),
        );
      } catch (error) {
        for (const group of groups) group.done.reject(error);
        continue;
      }
      insert({ name, count: events.length, at: lastAt });
      metrics?.events.written(label, events.length);
      for (const group of groups) group.done.resolve();
      await enforceBound();
      signal();
    }
    writing = undefined;
  };

  // ---- delivering

  /** Waits `ms`, or less when stopped (or, with `wakeable`, when a batch arrives). */
  const sleep = (ms: number, wakeable = false) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      const timer = ms > 0 ? setTimeout(done, ms) : undefined;
      function done() {
        clearTimeout(timer);
        abort.signal.removeEventListener("abort", done);
        if (wake === done) wake = undefined;
        resolve();
      }
      abort.signal.addEventListener("abort", done);
      if (wakeable) wake = done;
    });

  /** Merges the stored listing into the queue (names not known yet). */
  const relist = async () => {
    const known = new Set(queue.map((batch) => batch.name));
    const names = (await driver.list(eventsPath(label))).sort();
    for (const name of names) {
      const batch = parseBatchName(name);
      if (batch && !known.has(name)) {
        insert(batch);
        lastAt = Math.max(lastAt, batch.at);
      }
    }
  };

  /** One POST of events; true when the endpoint accepted them (2xx or 3xx, as distribution). */
  const post = async (events: StoredEvent[]): Promise<boolean> => {
    const headers = new Headers(endpoint.headers);
    headers.set("content-type", EVENTS_MEDIA_TYPE);
    if (events[0].traceparent) headers.set("traceparent", events[0].traceparent);
    const timeout = AbortSignal.timeout(endpoint.timeout);
    try {
      const response = await fetch(endpoint.url, {
        method: "POST",
        headers,
        body: JSON.stringify({ events: events.map((stored) => stored.event) }),
        redirect: "manual",
        signal: AbortSignal.any([timeout, abort.signal]),
      });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 400) return true;
      failure(`status ${response.status}`);
    } catch (error) {
      if (!stopped) {
        failure(timeout.aborted ? `no answer within ${endpoint.timeout} ms` : String(error));
      }
    }
    return false;
  };
  let failures = 0;
  const failure = (reason: string) => {
    failures++;
    metrics?.events.failed(label);
    log.warn("event delivery failed", {
      "events.endpoint": label,
      "events.failures": failures,
      "events.pending": pending,
      "error.message": reason,
    });
  };

  const readBatch = async (batch: Batch): Promise<StoredEvent[] | undefined> => {
    try {
      const bytes = await driver.get(eventBatchPath(label, batch.name));
      return (JSON.parse(new TextDecoder().decode(bytes)) as { events: StoredEvent[] }).events;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      if (error instanceof SyntaxError) {
        log.error("events outbox: unreadable batch dropped", {
          "events.endpoint": label,
          "events.batch": batch.name,
        });
        return undefined;
      }
      throw error;
    }
  };

  const deliver = async () => {
    let backoff = endpoint.backoff;
    const fail = async () => {
      await sleep(backoff);
      backoff = Math.min(backoff * 2, endpoint.maxBackoff);
    };
    // What earlier runs left goes first: until it is listed, nothing is delivered.
    while (!stopped) {
      try {
        await relist();
        break;
      } catch (error) {
        log.error("events outbox: listing failed", { "events.endpoint": label, error });
        await fail();
      }
    }
    backoff = endpoint.backoff;
    let relistedAt = Date.now();
    while (!stopped) {
      const relistEvery = options.relistEvery ?? 0;
      if (relistEvery > 0 && Date.now() - relistedAt >= relistEvery) {
        relistedAt = Date.now();
        await relist().catch((error) =>
          log.error("events outbox: listing failed", { "events.endpoint": label, error })
        );
      }
      const batch = queue[0];
      if (!batch) {
        await sleep(relistEvery, true);
        continue;
      }
      let events: StoredEvent[] | undefined;
      try {
        events = await readBatch(batch);
      } catch {
        await fail(); // storage is failing: the guard logged it
        continue;
      }
      let index = 0;
      while (events && index < events.length && !batch.dropped && !stopped) {
        const slice = events.slice(index, index + endpoint.batch);
        if (await post(slice)) {
          index += slice.length;
          metrics?.events.delivered(label, slice.length);
          if (failures > 0) {
            log.info("event delivery resumed", {
              "events.endpoint": label,
              "events.failures": failures,
            });
          }
          failures = 0;
          backoff = endpoint.backoff;
        } else if (!stopped) {
          await fail();
        }
      }
      if (stopped) break;
      if (batch.dropped) continue; // by the bound, meanwhile
      try {
        await driver.delete(eventBatchPath(label, batch.name));
      } catch {
        await fail(); // delivered again if it stays: duplicates, never a loss
        continue;
      }
      if (batch.dropped) continue;
      queue.splice(queue.indexOf(batch), 1);
      pending -= batch.count;
    }
  };

  const backlog = () => ({
    pending,
    oldestSeconds: queue.length === 0 ? 0 : Math.max(0, (Date.now() - queue[0].at) / 1000),
  });

  return {
    add(events) {
      if (events.length === 0) return Promise.resolve();
      const done = Promise.withResolvers<void>();
      gathering.push({ events, done });
      writing ??= drain();
      return done.promise;
    },
    start() {
      metrics?.events.backlog(label, backlog);
      running = deliver().catch((error) =>
        log.error("event delivery stopped", { "events.endpoint": label, error })
      );
    },
    async stop() {
      stopped = true;
      abort.abort();
      signal();
      await writing;
      await running;
    },
    backlog,
  };
}
