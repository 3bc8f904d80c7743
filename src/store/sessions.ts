// Owns upload-session identity: a signed `_state` carried in the session's Location, so starting
// a session writes nothing (distribution-spec v1.1 end-4a: Location names a unique session).

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { NotFoundError, type StorageDriver } from "../storage/driver.ts";
import { UPLOAD_STATE_KEY } from "../storage/paths.ts";

/*
 * A session exists on disk (`_uploads/<uuid>/`) only once it has bytes. Until then it is its
 * Location: `…/uploads/<uuid>?_state=<startedAt>.<mac>`, the MAC binding repository, uuid and
 * start time under a key kept in storage, so a restarted process or another instance on the same
 * storage accepts it too (distribution signs its `_state` the same way, with `http.secret`). A
 * POST then costs no file creations: with flushes running, each measured up to a millisecond of
 * a blocked event loop here, and a layer sent whole in the PUT never touches `_uploads/`. Once
 * the session stores bytes its Location is the plain one and its info on disk vouches for it, so
 * that ending it (deleting the info) is seen by every process. What a signature cannot say is
 * that a session that stored nothing has ended: this process remembers those (bounded), and a
 * signed session older than the upload TTL is unknown.
 */

export interface SessionState {
  name: string;
  uuid: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
}

export interface Sessions {
  /** The signing key, read from storage or made there on first use. */
  key(): Promise<Uint8Array>;
  /**
   * Reads the key again, at most every `reloadEvery` ms: resolves to it if it changed in
   * storage (two instances made one at once and the other's write came last), else undefined.
   */
  reload(): Promise<Uint8Array | undefined>;
  /** uuid → when this process ended the session; oldest first. */
  ended: Map<string, number>;
  /** A signed session older than this (ms) is unknown. */
  ttl: number;
}

/** Ended sessions remembered at most (about 60 bytes each). */
const MAX_ENDED = 100_000;
const MAC_CHARS = 22; // 128 bits, base64url

/** `reloadEvery`: how often a signature that fails may make the key be read again (ms). */
export function createSessions(driver: StorageDriver, ttl: number, reloadEvery = 10_000): Sessions {
  let key: Promise<Uint8Array> | undefined;
  let loadedAt = 0;
  const load = () => {
    loadedAt = Date.now();
    key = loadKey(driver).catch((error) => {
      key = undefined; // storage unreachable: try again on the next request
      throw error;
    });
    return key;
  };
  return {
    key: () => key ?? load(),
    async reload() {
      if (Date.now() - loadedAt < reloadEvery) return undefined;
      const before = await key?.catch(() => undefined);
      const after = await load();
      return before && before.join() === after.join() ? undefined : after;
    },
    ended: new Map(),
    ttl,
  };
}

/**
 * Reads the key, or makes it. Two instances starting at once on empty storage could each write
 * one; the last write is the key, and `reload` brings the other instance to it.
 */
async function loadKey(driver: StorageDriver): Promise<Uint8Array> {
  try {
    return await driver.get(UPLOAD_STATE_KEY);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  await driver.put(UPLOAD_STATE_KEY, new Uint8Array(randomBytes(32)));
  return await driver.get(UPLOAD_STATE_KEY);
}

function mac(key: Uint8Array, s: SessionState): string {
  return createHmac("sha256", key).update(`${s.name}\n${s.uuid}\n${s.startedAt}`)
    .digest("base64url").slice(0, MAC_CHARS);
}

/** The `_state` query value for a session. */
export function signState(key: Uint8Array, s: SessionState): string {
  return `${s.startedAt.toString(36)}.${mac(key, s)}`;
}

/** The start time a `_state` vouches for, or undefined if it was not signed for this session. */
export function verifyState(
  key: Uint8Array,
  name: string,
  uuid: string,
  state: string,
): number | undefined {
  const match = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]+)$/.exec(state);
  if (!match) return undefined;
  const startedAt = parseInt(match[1], 36);
  const expected = new TextEncoder().encode(mac(key, { name, uuid, startedAt }));
  const given = new TextEncoder().encode(match[2]);
  return given.length === expected.length && timingSafeEqual(given, expected)
    ? startedAt
    : undefined;
}

/** Whether a signed session may still be used: not ended here and not past the TTL. */
export function isLive(sessions: Sessions, uuid: string, startedAt: number, now = Date.now()) {
  return !sessions.ended.has(uuid) && now - startedAt <= sessions.ttl;
}

/** Remembers that a session ended, forgetting the oldest beyond the bound or the TTL. */
export function markEnded(sessions: Sessions, uuid: string, now = Date.now()): void {
  const { ended } = sessions;
  ended.delete(uuid);
  ended.set(uuid, now);
  for (const [oldest, at] of ended) {
    if (ended.size <= MAX_ENDED && now - at <= sessions.ttl) break;
    ended.delete(oldest);
  }
}
