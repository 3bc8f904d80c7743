// Owns GC pins several instances share through Redis: a pass on any instance sees every instance's
// pushes (the Pins of src/store/pins.ts), and a crashed instance's pins expire with its lease.

/*
 * `<ns>:pin:<digest>` is a hash, instance → count, whose time to live each holder renews while it
 * holds the digest. A pass marks `<ns>:gc:pass` with its token (renewed while it runs); while the
 * mark is there, pins, releases and links also add the digest to `<ns>:gc:touched`. Each of
 * these runs in the caller's digest lock (src/redis/locks.ts), as the sweep's check does, so the
 * one-process argument of src/maintenance/gc.ts holds across instances. A pass whose mark is gone
 * (Redis restarted and lost it) stops at its next check rather than trust an empty `touched`.
 * Pins and links wait for Redis while it is unreachable (as locks do), then fail the push.
 */

import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import type { Pins } from "../store/pins.ts";
import { type Arg, type RedisConnection, script, sleep } from "./client.ts";

// KEYS: pin hash, pass mark, touched set. ARGV: instance, delta, lease ms, digest.
const PIN = script(`
if ARGV[2] ~= '0' then
  local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('SADD', KEYS[3], ARGV[4]) end
return 0`);
// KEYS: pin hash, pass mark, touched set. ARGV: pass token, digest.
const PINNED = script(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
return redis.call('SISMEMBER', KEYS[3], ARGV[2])`);
// KEYS: pass mark, touched set. ARGV: token, lease ms.
const BEGIN = script(`
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0`);
const RENEW = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);
const END = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1], KEYS[2]) end
return 0`);

export interface RedisPinOptions {
  namespace: string;
  /** How long a crashed instance's pins (and a crashed pass's mark) last (ms). */
  lease: number;
  /** How long a pin waits for Redis (ms). */
  wait?: number;
}

export function createRedisPins(
  redis: RedisConnection,
  options: RedisPinOptions,
): Pins & { stop(): void } {
  const { namespace, lease } = options;
  const wait = options.wait ?? lease + 30_000;
  const instance = crypto.randomUUID();
  const passKey = `${namespace}:gc:pass`;
  const touchedKey = `${namespace}:gc:touched`;
  const pinKey = (digest: string) => `${namespace}:pin:${digest}`;
  /** This instance's pins, renewed every third of the lease. */
  const held = new Map<string, number>();
  let pass: { token: string } | undefined;

  const renewer = setInterval(() => {
    for (const digest of held.keys()) {
      redis.command(["PEXPIRE", pinKey(digest), String(lease)]).catch(() => {});
    }
    if (pass) redis.run(RENEW, [passKey], [pass.token, String(lease)]).catch(() => {});
  }, Math.max(50, Math.floor(lease / 3)));
  Deno.unrefTimer(renewer);

  /** Runs `args` through PIN, waiting for Redis while it is unreachable. */
  async function update(digest: string, delta: number, patient: boolean): Promise<void> {
    const args: Arg[] = [instance, String(delta), String(lease), digest];
    const deadline = Date.now() + (patient ? wait : 0);
    while (true) {
      try {
        await redis.run(PIN, [pinKey(digest), passKey, touchedKey], args);
        return;
      } catch (error) {
        if (Date.now() >= deadline) throw error;
        await sleep(100 + Math.random() * 100);
      }
    }
  }

  const unavailable = (error: unknown) => {
    log.error("redis pin failed", { error: (error as Error).message });
    return new RegistryError("UNAVAILABLE", "GC coordination is unavailable, retry later", {
      headers: { "retry-after": "5" },
    });
  };

  return {
    stop: () => clearInterval(renewer),
    async hold(digest) {
      try {
        await update(digest.value, 1, true);
      } catch (error) {
        throw unavailable(error);
      }
      held.set(digest.value, (held.get(digest.value) ?? 0) + 1);
    },
    async release(digests) {
      for (const digest of digests) {
        const count = (held.get(digest.value) ?? 0) - 1;
        if (count > 0) held.set(digest.value, count);
        else held.delete(digest.value);
        // A pin left behind expires with the lease (no longer renewed).
        await update(digest.value, -1, false).catch((error) =>
          log.warn("redis pin not released", { "blob.digest": digest.value, error: error.message })
        );
      }
    },
    async touch(digest) {
      try {
        await update(digest.value, 0, true);
      } catch (error) {
        throw unavailable(error);
      }
    },
    async isPinned(digest) {
      const reply = await redis.run(PINNED, [pinKey(digest), passKey, touchedKey], [
        pass?.token ?? "",
        digest,
      ]);
      if (reply === -1) throw new Error("gc pass lost its mark in redis (restarted?)");
      return reply === 1;
    },
    async beginPass() {
      const token = crypto.randomUUID();
      await redis.run(BEGIN, [passKey, touchedKey], [token, String(lease)]);
      pass = { token };
    },
    async endPass() {
      const ending = pass;
      pass = undefined;
      if (ending) {
        await redis.run(END, [passKey, touchedKey], [ending.token]).catch(() => {});
      }
    },
  };
}
