// Owns liveness and readiness: a cached storage probe and the shutting-down state, never I/O per poll.
// Implements GET /healthz and GET /readyz (a Kubernetes liveness and readiness probe's contract).

import { HEALTH_PROBE_KEY } from "../storage/paths.ts";
import { NotFoundError, type StorageDriver } from "../storage/driver.ts";
import { log } from "../log.ts";

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface Health {
  /**
   * The last probe's verdict (or shutting down), never waiting on storage; a verdict older than
   * `interval` starts a probe in the background, so however often it is polled, storage sees
   * at most one probe per interval (and none while nobody asks).
   */
  readiness(): Readiness;
  /** From now on not ready: the server is draining. */
  stopping(): void;
  /** Probes again now (a storage call failed), at most once a second. */
  suspect(): void;
  /** Waits for a probe in flight. */
  stop(): Promise<void>;
}

export interface HealthOptions {
  /** A verdict this old (ms) is renewed by the next poll; default 5 s. */
  interval?: number;
  /** A probe not answered within this (ms) fails; default 2 s. */
  timeout?: number;
}

const DEFAULT_INTERVAL = 5_000;
const DEFAULT_TIMEOUT = 2_000;

/**
 * Readiness from a probe of the (unguarded) driver: a stat of a key that is never written, so
 * "not found" is the healthy answer and any other error, or none within the timeout, is not.
 * Storage was reached at start (the server checks it before listening), so it starts ready.
 */
export function createHealth(driver: StorageDriver, options: HealthOptions = {}): Health {
  const interval = options.interval ?? DEFAULT_INTERVAL;
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  let verdict: Readiness = { ready: true };
  let shuttingDown = false;
  let stopped = false;
  let running: Promise<void> | undefined;
  let probedAt = Date.now();
  let suspectedAt = 0;

  const probe = async () => {
    probedAt = Date.now();
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<string>((resolve) => {
      deadline = setTimeout(() => resolve(`storage did not answer within ${timeout} ms`), timeout);
    });
    const answered = driver.stat(HEALTH_PROBE_KEY).then(
      () => undefined,
      (error) => error instanceof NotFoundError ? undefined : `storage failed: ${describe(error)}`,
    );
    const failure = await Promise.race([answered, expired]);
    clearTimeout(deadline);
    const next: Readiness = failure === undefined
      ? { ready: true }
      : { ready: false, reason: failure };
    if (next.ready !== verdict.ready) {
      if (next.ready) log.info("storage reachable again", {});
      else log.error("storage unreachable: not ready", { "health.reason": next.reason });
    }
    verdict = next;
  };
  const probeNow = () => {
    if (stopped || running) return;
    running = probe().finally(() => running = undefined);
  };

  return {
    readiness() {
      if (shuttingDown) return { ready: false, reason: "shutting down" };
      if (Date.now() - probedAt >= interval) probeNow();
      return verdict;
    },
    stopping() {
      shuttingDown = true;
    },
    suspect() {
      // A burst of failures costs one probe a second.
      if (Date.now() - suspectedAt < 1000) return;
      suspectedAt = Date.now();
      probeNow();
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}
