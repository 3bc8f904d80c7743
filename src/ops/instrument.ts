// Owns the metrics wrappers of the storage driver and the store: the seams metrics hook into.
// No spec section: counts, latencies and failures by driver and operation; cache and upload gauges.

import type { Tap } from "../exchange.ts";
import { bodyBytesRead } from "../http.ts";
import { NotFoundError, type StorageDriver } from "../storage/driver.ts";
import { wrapDriver } from "../storage/wrap.ts";
import type { Store } from "../store/store.ts";
import { sentBytes } from "./access_log.ts";
import type { AuthFailure, Metrics } from "./metrics.ts";

/**
 * Requests counted and timed by route (the route table's spec id, `none` when no route matched),
 * method and status, with their body bytes; refusals by auth counted by reason.
 */
export function requestMetrics(metrics: Metrics): Tap {
  return {
    received: () => metrics.inFlight(1),
    answered(exchange, response) {
      metrics.inFlight(-1);
      const { request } = exchange;
      metrics.request(
        exchange.route?.spec ?? "none",
        request.method,
        response.status,
        (performance.now() - exchange.started) / 1000,
        bodyBytesRead(request),
        sentBytes(exchange, response) ?? 0,
      );
      const refusal = authFailure(response.status, request);
      if (refusal) metrics.authFailure(refusal);
    },
  };
}

/**
 * 401 is a failure only when credentials were sent (a first request without them is the
 * challenge every client expects); 403 is a user denied; 429 a login slowed by the limiter.
 */
function authFailure(status: number, request: Request): AuthFailure | undefined {
  if (status === 401) return request.headers.has("authorization") ? "bad_credentials" : undefined;
  if (status === 403) return "denied";
  if (status === 429) return "rate_limited";
  return undefined;
}

/**
 * The driver with every call counted and timed by driver kind and operation. A failure is any
 * error but `NotFoundError` (an answer, not a fault); `onFailure` hears of each (readiness).
 */
export function instrumentDriver(
  driver: StorageDriver,
  metrics: Metrics,
  onFailure: () => void = () => {},
): StorageDriver {
  return wrapDriver(driver, async (op, _key, work, own) => {
    const started = performance.now();
    let failed = false;
    try {
      return await work();
    } catch (error) {
      failed = !(error instanceof NotFoundError) && !own?.has(error);
      if (failed) onFailure();
      throw error;
    } finally {
      metrics.storage(driver.kind, op, (performance.now() - started) / 1000, failed);
    }
  });
}

/** Upload sessions remembered at most; past it the least recently active is forgotten. */
const MAX_TRACKED_UPLOADS = 100_000;

/**
 * The store with its lookup cache counted and its upload sessions in progress tracked:
 * a session is in progress from its start or its first bytes here until it is finished,
 * cancelled, or idle longer than the upload TTL (when expiry would drop it).
 */
export function instrumentStore(store: Store, metrics: Metrics): Store {
  metrics.cache(store.state.cache.kind, store.state.cache.stats);
  /** uuid → last activity (ms), least recent first. */
  const active = new Map<string, number>();
  const seen = (uuid: string) => {
    active.delete(uuid);
    active.set(uuid, Date.now());
    if (active.size > MAX_TRACKED_UPLOADS) active.delete(active.keys().next().value!);
  };
  metrics.uploadsInProgress(() => {
    const idleSince = Date.now() - store.state.uploadTtl;
    for (const [uuid, at] of active) {
      if (at >= idleSince) break;
      active.delete(uuid);
    }
    return active.size;
  });
  const { uploads } = store;
  return {
    ...store,
    uploads: {
      ...uploads,
      async start(name) {
        const session = await uploads.start(name);
        seen(session.uuid);
        return session;
      },
      async append(session, body) {
        seen(session.uuid);
        return await uploads.append(session, body);
      },
      async finish(session, digest, body) {
        await uploads.finish(session, digest, body);
        active.delete(session.uuid);
      },
      async cancel(session) {
        await uploads.cancel(session);
        active.delete(session.uuid);
      },
    },
  };
}
