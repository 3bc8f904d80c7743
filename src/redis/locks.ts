// Owns the locks several instances share through Redis: per-key leases, renewed while held, that a
// crashed instance's locks outlive by at most the lease (the WithLock of src/store/locks.ts).

/*
 * A lock is `<ns>:lock:<key>` set to the holder's token with a time to live (the lease), taken
 * with SET NX semantics in a script that also recognises a take of our own whose answer was lost.
 * The holder renews it every third of the lease; a holder that stalls past the lease (or loses
 * Redis that long) has lost it, and `confirm` says so before it changes storage irrevocably.
 * S3 has no conditional delete and its conditional PUT (If-Match) is not uniform across S3
 * implementations, so that check is the fence: the window left is a stall between the check and
 * the request it guards. Waiters of one process queue in memory (src/store/locks.ts) and only the
 * first polls Redis. While Redis is unreachable a lock is waited for, up to the lease and a margin,
 * then the request fails with 503 and Retry-After: pushes stall during an outage, they do not
 * proceed unordered.
 */

import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import { createLocks, type Held, type WithLock } from "../store/locks.ts";
import { type RedisConnection, script, sleep } from "./client.ts";

const TAKE = script(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`);
const RENEW = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`);
const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`);

export interface RedisLockOptions {
  namespace: string;
  /** How long a lock outlives a holder that stopped renewing it (ms). */
  lease: number;
  /** How long to wait for a lock, or for Redis (ms); default: the lease plus 30 s. */
  wait?: number;
}

export function createRedisLocks(redis: RedisConnection, options: RedisLockOptions): WithLock {
  const local = createLocks();
  const lease = options.lease;
  const wait = options.wait ?? lease + 30_000;
  return <T>(key: string, work: (held: Held) => Promise<T>) =>
    local(key, () => withLease(`${options.namespace}:lock:${key}`, work));

  async function withLease<T>(key: string, work: (held: Held) => Promise<T>): Promise<T> {
    const token = crypto.randomUUID();
    await take(key, token);
    let renewedAt = Date.now();
    let lost = false;
    const renew = async () => {
      try {
        if (await redis.run(RENEW, [key], [token, String(lease)]) === 1) renewedAt = Date.now();
        else lost = true;
      } catch {
        if (Date.now() - renewedAt >= lease) lost = true;
      }
    };
    const timer = setInterval(renew, Math.max(50, Math.floor(lease / 3)));
    const held: Held = {
      async confirm() {
        if (!lost) {
          try {
            lost = await redis.run(RENEW, [key], [token, String(lease)]) !== 1;
          } catch (error) {
            throw lockLost(key, (error as Error).message);
          }
        }
        if (lost) throw lockLost(key, "its lease ran out");
      },
    };
    try {
      return await work(held);
    } finally {
      clearInterval(timer);
      await redis.run(RELEASE, [key], [token]).catch((error) => {
        // It expires with its lease.
        log.warn("redis lock not released", { "lock.key": key, error: error.message });
      });
    }
  }

  async function take(key: string, token: string): Promise<void> {
    const deadline = Date.now() + wait;
    let pause = 2;
    let failure: unknown;
    while (Date.now() < deadline) {
      try {
        if (await redis.run(TAKE, [key], [token, String(lease)]) === 1) return;
        failure = undefined;
      } catch (error) {
        failure = error; // unreachable or slow: wait for it
        pause = Math.max(pause, 100);
      }
      await sleep(pause * (0.5 + Math.random()));
      pause = Math.min(pause * 2, failure ? 100 : 25);
    }
    log.error("redis lock not taken", {
      "lock.key": key,
      error: failure ? (failure as Error).message : "held by another instance",
    });
    throw new RegistryError("UNAVAILABLE", "a lock could not be taken, retry later", {
      headers: { "retry-after": "5" },
      detail: { lock: key.slice(key.indexOf(":lock:") + 6) },
    });
  }
}

function lockLost(key: string, reason: string): RegistryError {
  log.error("redis lock lost", { "lock.key": key, "lock.reason": reason });
  return new RegistryError("UNAVAILABLE", "a lock was lost, retry later", {
    headers: { "retry-after": "1" },
  });
}
