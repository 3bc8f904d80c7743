// Owns the web UI's sign-outs several instances share through Redis: a session ended on one is
// refused by all (the Revocations of src/revocations.ts), each key living until the session would end.

/*
 * `<ns>:signed-out:<id>` exists while the session it names would still be valid. The id comes from
 * a cookie whose signature was checked. This process also keeps its own sign-outs in memory, so
 * they hold while Redis is unreachable: then a sign-out made on another instance is not seen (the
 * cookie is still signed and unexpired), which is logged once per outage rather than locking every
 * user out of the UI.
 */

import { log } from "../log.ts";
import { createMemoryRevocations, type Revocations } from "../revocations.ts";
import type { RedisConnection } from "./client.ts";

export function createRedisRevocations(
  redis: RedisConnection,
  options: { namespace: string; now?: () => number },
): Revocations {
  const now = options.now ?? Date.now;
  const local = createMemoryRevocations(now);
  const key = (id: string) => `${options.namespace}:signed-out:${id}`;
  let failing = false;
  const failed = (what: string, error: unknown) => {
    if (!failing) log.warn(`${what}: redis unavailable`, { error: (error as Error).message });
    failing = true;
  };
  return {
    async revoke(id, expires) {
      await local.revoke(id, expires);
      const ttl = Math.ceil(expires - now());
      if (ttl <= 0) return;
      try {
        await redis.command(["SET", key(id), "1", "PX", String(ttl)]);
        failing = false;
      } catch (error) {
        failed("sign-out kept on this instance only", error);
      }
    },
    async isRevoked(id) {
      if (await local.isRevoked(id)) return true;
      try {
        const found = await redis.command(["EXISTS", key(id)]);
        failing = false;
        return found === 1;
      } catch (error) {
        failed("sign-outs of other instances not checked", error);
        return false;
      }
    },
  };
}
