// Owns the shared lookup cache in Redis: tags, manifests, blob sizes and links for every instance,
// kept coherent with storage by fill claims and write markers (the StoreCache of src/store/cache.ts).

/*
 * Every entry lives at `<ns>:c:<epoch>:<kind>:<key>` and holds one of:
 *   V<value>   what storage holds (for a manifest: its media type, "\n", its bytes)
 *   N          storage holds nothing there
 *   F<token>   a reader that missed is loading it from storage (expires quickly)
 *   P<n>[d]    n writes are in progress (`d`: they overlapped, so their outcome is unknown)
 * A reader that finds nothing claims the key (F) in the same script, loads it from storage, and
 * fills it only if its claim is still there. A writer marks the key (P) before it writes storage,
 * which voids any claim; when it is done it sets what it wrote, unless its mark is gone (expired,
 * or the epoch changed) or other writes overlapped: then it deletes the key, and the next reader
 * loads it again. So a reader never fills an answer older than a write that had begun, and once a
 * write was answered, every instance either sees it or reads storage.
 *
 * When Redis cannot be reached (or a command times out) lookups read storage and writes go on;
 * a write whose end could not be recorded may have left an older answer behind, so the instance
 * starts a new epoch (INCR: every old entry is unreachable) before it uses the cache again. Each
 * instance does the same whenever it (re)connects: entries written while it was away, or restored
 * from a Redis snapshot, are never trusted. What this cannot cover is a partition that cuts one
 * instance off Redis while others still use it: their cache may then serve a tag it moved, until
 * it reconnects (README).
 */

import { Buffer } from "node:buffer";
import { parseDigest } from "../grammar.ts";
import { log } from "../log.ts";
import {
  type CachedValues,
  type CacheKind,
  type CacheStats,
  type Found,
  newCacheStats,
  type StoreCache,
} from "../store/cache.ts";
import { type Arg, type RedisConnection, script } from "./client.ts";

export interface RedisCacheOptions {
  /** Key prefix of this registry (its storage): several registries may share one Redis. */
  namespace: string;
  /** Manifests larger than this (bytes) are not kept. */
  maxManifestBytes?: number;
  /** How long an entry lives unless rewritten (ms). */
  ttl?: number;
}

/** A reader's claim outlives any single storage lookup it covers. */
const CLAIM_MS = 10_000;
/** A writer's mark: past it a crashed writer's key is read from storage again. */
const MARK_MS = 60_000;
const DEFAULT_TTL = 60 * 60 * 1000;
const DEFAULT_MAX_MANIFEST = 256 * 1024;
/** Failures are logged at most this often (ms); every one is counted. */
const LOG_EVERY = 10_000;

const ENTRY = `local k = ARGV[1] .. (redis.call('GET', KEYS[1]) or '0') .. ':' .. ARGV[2]\n`;
const READ = script(
  ENTRY + `
local v = redis.call('GET', k)
if v then return v end
redis.call('SET', k, 'F' .. ARGV[3], 'PX', ARGV[4])
return 'C'`,
);
const FILL = script(
  ENTRY + `
if redis.call('GET', k) == 'F' .. ARGV[3] then redis.call('SET', k, ARGV[4], 'PX', ARGV[5]) end
return 0`,
);
const BEGIN = script(
  ENTRY + `
local v = redis.call('GET', k)
local n, mark = 0, ''
if v and string.sub(v, 1, 1) == 'P' then
  n = tonumber(string.match(v, '^P(%d+)')) or 0
  mark = 'd'
end
redis.call('SET', k, 'P' .. (n + 1) .. mark, 'PX', ARGV[3])
return 0`,
);
const END = script(
  ENTRY + `
local v = redis.call('GET', k)
if not v or string.sub(v, 1, 1) ~= 'P' then redis.call('DEL', k) return 0 end
local n = tonumber(string.match(v, '^P(%d+)')) or 1
if n > 1 then redis.call('SET', k, 'P' .. (n - 1) .. 'd', 'PX', ARGV[5]) return 0 end
if string.find(v, 'd', 2, true) or ARGV[3] == '' then redis.call('DEL', k) return 0 end
redis.call('SET', k, ARGV[3], 'PX', ARGV[4])
return 0`,
);

const V = 0x56;
const N = 0x4e;
const C = 0x43;
const NEWLINE = 0x0a;

export function createRedisCache(redis: RedisConnection, options: RedisCacheOptions): StoreCache {
  const epochKey = `${options.namespace}:epoch`;
  const prefix = `${options.namespace}:c:`;
  const ttl = String(options.ttl ?? DEFAULT_TTL);
  const maxManifest = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
  const stats: CacheStats = newCacheStats();
  const instance = crypto.randomUUID().slice(0, 8);
  let claims = 0;
  /** Set until a new epoch is begun: at start, after a reconnect, after an unrecorded write. */
  let stale = true;
  let renewing: Promise<boolean> | undefined;
  let loggedAt = 0;

  redis.onReconnect(() => stale = true);

  const failed = (op: string, error: unknown) => {
    stats.failures++;
    const now = Date.now();
    if (now - loggedAt < LOG_EVERY) return;
    loggedAt = now;
    log.warn("cache unavailable, reading storage", {
      "cache.op": op,
      "cache.failures": stats.failures,
      error: (error as Error)?.message ?? String(error),
    });
  };

  /** Whether the cache may be used now: a stale instance first begins a new epoch. */
  const usable = (): boolean | Promise<boolean> => {
    if (!stale) {
      if (redis.ready) return true;
      failed("connect", "not connected");
      return false;
    }
    renewing ??= redis.command(["INCR", epochKey]).then(
      () => {
        stale = false;
        return true;
      },
      (error) => {
        failed("epoch", error);
        return false;
      },
    ).finally(() => renewing = undefined);
    return renewing;
  };

  const run = (which: typeof READ, kindKey: string, args: Arg[]) =>
    redis.run(which, [epochKey], [prefix, kindKey, ...args]);

  async function read<K extends CacheKind>(
    kind: K,
    key: string,
    load: () => Promise<Found<K>>,
  ): Promise<Found<K>> {
    if (!await usable()) {
      stats.misses[kind]++;
      return load();
    }
    const kindKey = `${kind}:${key}`;
    const token = `${instance}.${++claims}`;
    let reply: Buffer;
    try {
      reply = await run(READ, kindKey, [token, String(CLAIM_MS)]) as Buffer;
    } catch (error) {
      failed("read", error);
      stats.misses[kind]++;
      return load();
    }
    if (reply[0] === V || reply[0] === N) {
      const found = decode(kind, reply);
      if (found !== undefined) {
        stats.hits[kind]++;
        return found;
      }
    }
    stats.misses[kind]++;
    const found = await load();
    if (reply[0] === C) {
      const value = encode(kind, found, maxManifest);
      if (value) {
        run(FILL, kindKey, [token, value, ttl]).catch((error) => failed("fill", error));
      }
    }
    return found;
  }

  return {
    kind: "redis",
    read,
    async write<K extends CacheKind, T>(
      kind: K,
      key: string,
      work: () => Promise<T>,
      after?: Found<K>,
    ): Promise<T> {
      const kindKey = `${kind}:${key}`;
      if (await usable()) {
        await run(BEGIN, kindKey, [String(MARK_MS)]).catch((error) => failed("begin", error));
      }
      let value: Arg = "";
      try {
        const result = await work();
        value = (after !== undefined && encode(kind, after, maxManifest)) || "";
        return result;
      } finally {
        // Even without a mark of ours: the end deletes whatever a reader filled meanwhile.
        await run(END, kindKey, [value, ttl, String(MARK_MS)]).catch((error) => {
          failed("end", error);
          stale = true;
        });
      }
    },
    async clear() {
      try {
        await redis.command(["INCR", epochKey]);
      } catch (error) {
        failed("clear", error);
        stale = true;
      }
    },
    stats,
  };
}

function encode<K extends CacheKind>(kind: K, found: Found<K>, maxManifest: number): Arg | "" {
  if (found === null) return "N";
  switch (kind) {
    case "tag":
      return `V${(found as CachedValues["tag"]).value}`;
    case "blob":
      return `V${found as number}`;
    case "link":
      return "V";
    default: {
      const manifest = found as CachedValues["manifest"];
      if (manifest.bytes.length > maxManifest) return "";
      return Buffer.concat([Buffer.from(`V${manifest.mediaType}\n`), manifest.bytes]);
    }
  }
}

/** An entry's answer, or undefined when it cannot be read (then storage is asked). */
function decode<K extends CacheKind>(kind: K, reply: Buffer): Found<K> | undefined {
  if (reply[0] === N) return null;
  switch (kind) {
    case "tag":
      return (parseDigest(reply.toString("latin1", 1)) ?? undefined) as Found<K> | undefined;
    case "blob": {
      const size = Number(reply.toString("latin1", 1));
      return (Number.isSafeInteger(size) ? size : undefined) as Found<K> | undefined;
    }
    case "link":
      return true as Found<K>;
    default: {
      const newline = reply.indexOf(NEWLINE);
      if (newline < 0) return undefined;
      const bytes = new Uint8Array(reply.length - newline - 1);
      bytes.set(reply.subarray(newline + 1));
      return { mediaType: reply.toString("utf8", 1, newline), bytes } as Found<K>;
    }
  }
}
