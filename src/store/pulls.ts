// Owns pull records: when each tag and manifest of a repository was last pulled, gathered in memory
// and written in batches, one object per repository per flush (cache eviction, retention).

/*
 * A pull is a map update in memory; `flushPulls` (every minute, and at shutdown) merges what
 * gathered into `_pulls/<repository>` (the latest time wins), one read and one write per
 * repository pulled since. Readers (GC) see the stored times and the unflushed ones together.
 * Several instances on one storage each merge their own: a flush racing another's may lose the
 * other's newer time for one interval, which only makes something look older than it is by
 * that much — never a wrong manifest. `_pulls/_since` holds when recording began: before it
 * nothing is known, so "not pulled for a day" can only be true a day after it (retention).
 */

import type { Digest } from "../grammar.ts";
import { log } from "../log.ts";
import { pullsPath, pullsSincePath } from "../storage/paths.ts";
import { orMissing, type PullTimes, readJson, type StoreState, writeJson } from "./state.ts";

export type { PullTimes };

/** How often pending pulls are written (ms). */
export const FLUSH_INTERVAL = 60_000;

/** Records a pull of a manifest (by tag, then with the digest it resolved to). */
export function recordPull(
  state: StoreState,
  name: string,
  digest: Digest,
  tag: string | undefined,
  now = Date.now(),
): void {
  const pulls = state.pulls;
  if (!pulls) return;
  let times = pulls.pending.get(name);
  if (!times) pulls.pending.set(name, times = emptyTimes());
  times.manifests[digest.value] = now;
  if (tag !== undefined) times.tags[tag] = now;
}

/** A repository's pull times: stored, with those not yet written on top. */
export async function lastPulls(state: StoreState, name: string): Promise<PullTimes> {
  const stored = await readJson<PullTimes>(state, pullsPath(name));
  return merge(merge(emptyTimes(), stored), state.pulls?.pending.get(name));
}

/** When pulls began to be recorded in this storage (ms), or undefined if they never were. */
export async function pullsSince(state: StoreState): Promise<number | undefined> {
  if (state.pulls?.since !== undefined) return state.pulls.since;
  const since = await readJson<unknown>(state, pullsSincePath);
  return typeof since === "number" ? since : undefined;
}

/** Writes `_pulls/_since` unless it exists: the first flush of any process that records pulls. */
async function markSince(state: StoreState, now: number): Promise<void> {
  const pulls = state.pulls!;
  if (pulls.since !== undefined) return;
  const stored = await orMissing(state.driver.get(pullsSincePath));
  const since = stored && Number(new TextDecoder().decode(stored));
  if (since && Number.isFinite(since)) pulls.since = since;
  else {
    await writeJson(state, pullsSincePath, now);
    pulls.since = now;
  }
}

/** Writes every repository's pending pulls; resolves to how many repositories were written. */
export async function flushPulls(state: StoreState, now = Date.now()): Promise<number> {
  const pulls = state.pulls;
  if (!pulls) return 0;
  await markSince(state, now);
  const batch = pulls.pending;
  pulls.pending = new Map();
  let written = 0;
  const entries = [...batch];
  try {
    for (const [name, times] of entries) {
      const stored = await readJson<PullTimes>(state, pullsPath(name));
      const merged = merge(merge(emptyTimes(), stored), times);
      await writeJson(state, pullsPath(name), merged, { durable: false });
      written++;
    }
  } catch (error) {
    // What was not written waits for the next flush (merged with what came since).
    for (const [name, times] of entries.slice(written)) {
      pulls.pending.set(name, merge(merge(emptyTimes(), times), pulls.pending.get(name)));
    }
    throw error;
  }
  return written;
}

/**
 * Keeps only the times of tags and manifests that `keep` accepts (GC, after it deleted some),
 * rewriting the repository's record if anything went.
 */
export async function prunePulls(
  state: StoreState,
  name: string,
  keep: { tags: Set<string>; manifests: Set<string> },
): Promise<void> {
  const stored = await readJson<PullTimes>(state, pullsPath(name));
  if (!stored) return;
  const kept: PullTimes = {
    tags: pick(stored.tags, keep.tags),
    manifests: pick(stored.manifests, keep.manifests),
  };
  const before = Object.keys(stored.tags ?? {}).length + Object.keys(stored.manifests ?? {}).length;
  const after = Object.keys(kept.tags).length + Object.keys(kept.manifests).length;
  if (after === before) return;
  if (after === 0) await state.driver.delete(pullsPath(name));
  else await writeJson(state, pullsPath(name), kept, { durable: false });
}

const emptyTimes = (): PullTimes => ({ tags: {}, manifests: {} });

/** Adds `more` into `into`, the later time winning; ignores malformed entries. */
function merge(into: PullTimes, more: Partial<PullTimes> | undefined): PullTimes {
  for (const kind of ["tags", "manifests"] as const) {
    const source = more?.[kind];
    if (typeof source !== "object" || source === null) continue;
    for (const [key, time] of Object.entries(source)) {
      if (typeof time === "number" && !(into[kind][key] >= time)) into[kind][key] = time;
    }
  }
  return into;
}

function pick(times: Record<string, number> | undefined, keep: Set<string>) {
  return Object.fromEntries(Object.entries(times ?? {}).filter(([key]) => keep.has(key)));
}

export interface PullFlushes {
  /** Stops the timer and writes what is pending. */
  stop(): Promise<void>;
}

/**
 * Flushes pending pulls every `interval` ms (errors are logged; the pulls wait for the next);
 * nothing is written while `paused` (read-only mode).
 */
export function startPullFlushes(
  state: StoreState,
  interval = FLUSH_INTERVAL,
  paused: () => boolean = () => false,
): PullFlushes {
  let running: Promise<unknown> = Promise.resolve();
  const flush = () =>
    running = running.then(() => paused() ? 0 : flushPulls(state))
      .catch((error) => log.error("pull records not written", { error }));
  const timer = setInterval(flush, interval);
  return {
    stop() {
      clearInterval(timer);
      return flush().then(() => {});
    },
  };
}
