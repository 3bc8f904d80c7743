// Owns the choice of Redis for everything several instances share (`--redis URL`), on one
// connection: the lookup cache, locks, GC pins and turns (src/store/state.ts), and UI sign-outs.

import { createHash } from "node:crypto";
import { log } from "../log.ts";
import type { Coordination } from "../store/state.ts";
import { connectRedis } from "./client.ts";
import { createRedisCache } from "./cache.ts";
import { createRedisLocks } from "./locks.ts";
import { createRedisPins } from "./pins.ts";
import { createRedisRevocations } from "./revocations.ts";
import type { Revocations } from "../revocations.ts";

export interface RedisSettings {
  /** `redis://[user:pass@]host:port/db` or `rediss://…` (TLS). */
  url: string;
  /**
   * What the registry stores into (bucket and prefix): its keys are apart from other registries'
   * on the same Redis. Instances of one registry must agree on it (src/server.ts storageIdentity).
   */
  storage?: string;
  /** How long a crashed instance's locks and pins outlive it (ms). */
  lease: number;
}

export interface RedisCoordination extends Coordination {
  /** The web UI's sign-outs, seen by every instance. */
  signedOut: Revocations;
  close(): Promise<void>;
}

/** Default lease of locks and pins (ms). */
export const DEFAULT_LEASE = 30_000;

/** Connects (one clear line if it cannot) and builds the shared implementations. */
export async function connectCoordination(settings: RedisSettings): Promise<RedisCoordination> {
  const redis = await connectRedis(settings.url);
  const namespace = `sr:${
    createHash("sha256").update(settings.storage ?? "").digest("hex").slice(0, 12)
  }`;
  const { lease } = settings;
  const pins = createRedisPins(redis, { namespace, lease });
  log.info("redis connected", { "redis.url": redis.where, "redis.namespace": namespace });
  return {
    cache: createRedisCache(redis, { namespace }),
    withLock: createRedisLocks(redis, { namespace, lease }),
    pins,
    signedOut: createRedisRevocations(redis, { namespace }),
    async gcTurn(interval) {
      // The first instance to ask in an interval takes it; the others skip it.
      try {
        const taken = await redis.command([
          "SET",
          `${namespace}:gc:turn`,
          "1",
          "NX",
          "PX",
          String(Math.max(1, Math.floor(interval * 0.9))),
        ]);
        return taken !== null;
      } catch (error) {
        log.warn("gc turn skipped: redis unavailable", { error: (error as Error).message });
        return false;
      }
    },
    async close() {
      pins.stop();
      await redis.close();
    },
  };
}
