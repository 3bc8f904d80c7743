// Owns the expiry of abandoned upload sessions: a loop that runs whether or not GC is on.
// Implements the spec's leeway to drop uploads that stall (end-4a: sessions may expire).

import { formatDuration } from "../duration.ts";
import { log } from "../log.ts";
import type { StoreState } from "../store/state.ts";
import { expireSessions } from "../store/uploads.ts";

export interface ExpiryLoop {
  stop(): Promise<void>;
}

/** How often sessions are looked at: a quarter of the TTL, from a second to an hour. */
export function expiryInterval(ttl: number): number {
  return Math.min(Math.max(ttl / 4, 1000), 3_600_000);
}

/**
 * Drops sessions idle longer than `ttl` ms, every `expiryInterval(ttl)`; errors are logged. Not
 * while `paused` (read-only mode: nothing is written, sessions wait).
 */
export function startUploadExpiry(
  state: StoreState,
  ttl: number,
  paused: () => boolean = () => false,
): ExpiryLoop {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    timer = setTimeout(() => {
      if (paused()) return schedule();
      running = expireSessions(state, ttl)
        .then(({ expired, bytes }) => {
          if (expired > 0) {
            log.info("uploads expired", { "uploads.expired": expired, "uploads.bytes": bytes });
          }
        }, (error) => log.error("upload expiry failed", { error }))
        .finally(() => {
          running = undefined;
          if (!stopped) schedule();
        });
    }, expiryInterval(ttl));
  };
  log.debug("upload expiry scheduled", { "uploads.ttl": formatDuration(ttl) });
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
