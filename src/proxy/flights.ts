// Owns blob fetches in flight: one upstream download per missing blob, streamed into storage and
// to every client that asked for it at once, with nothing held whole in memory (issue 13).

/*
 * A flight reads the upstream's body once and hashes it as it arrives. Each chunk, once the next
 * one has arrived, is handed to the clients reading along and queued for the store, whose commit
 * writes it (hashing it again: the blob appears only if its digest holds). The last chunk is
 * handed out only once the whole body hashed right: a client never receives a whole blob with the
 * wrong bytes; on a mismatch its response breaks off instead, and nothing is stored.
 *
 * The store may fall up to STORE_LAG_BYTES behind the download (a disk flush, a slow write)
 * before the download waits for it, so clients are not paced by every stall of the disk; they
 * finish when the bytes are verified, the commit may end a moment later.
 *
 * Clients join while the flight's first HEAD_BYTES are still in memory (they get those first,
 * then follow live); later ones wait for the commit and read from the store. A client more than
 * LAG_BYTES behind the download stops following and finishes from the store after the commit, so
 * a slow client never slows the download nor holds memory. A client that goes away just stops
 * following: the download and the commit go on for the others and for the cache.
 */

import { createHasher, finish } from "../digest.ts";
import { RegistryError } from "../errors.ts";
import type { Digest } from "../grammar.ts";

/** Bytes kept from a flight's start, for clients that join it. */
const HEAD_BYTES = 8 * 1024 * 1024;
/** Bytes a client may fall behind the download before it finishes from the store instead. */
const LAG_BYTES = 16 * 1024 * 1024;
/** Bytes the store's write may fall behind the download before the download waits. */
const STORE_LAG_BYTES = 16 * 1024 * 1024;
/** An upstream body that sends nothing for this long is given up (ms). */
const DEFAULT_IDLE_TIMEOUT = 60_000;

export interface FlightSource {
  /** The blob it is. */
  digest: Digest;
  /** The upstream's body. */
  body: ReadableStream<Uint8Array>;
  /** Its length, from Content-Length. */
  size: number | undefined;
  /** Aborts the upstream request (idle timeout). */
  abort(reason: Error): void;
}

export interface FlightDeps {
  /** Stores the bytes, verifying the digest as they pass; rejects (storing nothing) otherwise. */
  commit(chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** The stored blob from `offset` to its end, once committed. */
  readStored(offset: number): Promise<ReadableStream<Uint8Array>>;
  idleTimeout?: number;
}

export interface Flight {
  size: number | undefined;
  /** Settles once the blob is stored, or rejects with why the fetch (or the store) failed. */
  done: Promise<void>;
  /** A stream of the whole blob that follows the download, or undefined once joining is too late. */
  join(): ReadableStream<Uint8Array> | undefined;
}

interface Follower {
  push(chunk: Uint8Array): void;
  end(): void;
  fail(error: unknown): void;
}

export function startFlight(source: FlightSource, deps: FlightDeps): Flight {
  const followers = new Set<Follower>();
  /** The chunks handed out so far, while they fit in HEAD_BYTES; undefined after. */
  let head: Uint8Array[] | undefined = [];
  let headBytes = 0;

  const release = (chunk: Uint8Array) => {
    if (head) {
      headBytes += chunk.length;
      if (headBytes <= HEAD_BYTES) head.push(chunk);
      else head = undefined;
    }
    for (const follower of followers) follower.push(chunk);
  };
  const settle = (outcome: { error: unknown } | undefined) => {
    head = undefined;
    for (const follower of followers) outcome ? follower.fail(outcome.error) : follower.end();
    followers.clear();
  };

  const queue = storeQueue(STORE_LAG_BYTES);
  const stored = deps.commit(queue.drain());
  // A commit that fails before it drains the queue must not hold the download up.
  stored.catch(() => queue.close());
  const idleTimeout = deps.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;

  /** Reads, hashes, hands out and queues the body; resolves once it all arrived and hashed right. */
  async function download(): Promise<void> {
    const { digest } = source;
    const hash = createHasher(digest.algorithm);
    const reader = source.body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let held: Uint8Array | undefined;
    try {
      while (true) {
        timer = setTimeout(
          () => source.abort(new Error(`the upstream sent nothing for ${idleTimeout} ms`)),
          idleTimeout,
        );
        const { done, value } = await reader.read();
        clearTimeout(timer);
        if (done) break;
        hash.update(value);
        if (held) release(held);
        held = value;
        await queue.put(value);
      }
      const actual = finish(hash, digest.algorithm);
      if (actual !== digest.value) {
        throw new RegistryError(
          "DIGEST_INVALID",
          "provided digest did not match uploaded content",
          {
            detail: { expected: digest.value, actual },
          },
        );
      }
      if (held) release(held);
      queue.end();
      settle(undefined);
    } catch (error) {
      clearTimeout(timer);
      queue.fail(error);
      settle({ error });
      reader.cancel().catch(() => {});
      throw error;
    }
  }

  const downloaded = download();
  // The download's failure comes first (the commit only sees it echoed by the queue).
  const done = downloaded.then(() => stored, (error) => {
    stored.catch(() => {});
    throw error;
  });
  done.catch(() => {}); // followers and waiters see the failure; nobody may be listening

  return {
    size: source.size,
    done,
    join() {
      if (!head) return undefined;
      return follow(head.slice());
    },
  };

  /** Follows the download from now on (registered at once: no chunk is missed). */
  function follow(queue: Uint8Array[]): ReadableStream<Uint8Array> {
    let queued = queue.reduce((n, chunk) => n + chunk.length, 0);
    let ended = false;
    let behind = false;
    let cancelled = false;
    let failure: { error: unknown } | undefined;
    let wake: (() => void) | undefined;
    const follower: Follower = {
      push(chunk) {
        if (queued > LAG_BYTES) {
          behind = true;
          followers.delete(follower);
        } else {
          queue.push(chunk);
          queued += chunk.length;
        }
        wake?.();
      },
      end() {
        ended = true;
        wake?.();
      },
      fail(error) {
        failure = { error };
        wake?.();
      },
    };
    followers.add(follower);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let offset = 0;
      try {
        while (true) {
          const chunk = queue.shift();
          if (chunk) {
            queued -= chunk.length;
            offset += chunk.length;
            yield chunk;
            continue;
          }
          if (failure) throw failure.error;
          if (ended || cancelled) return;
          if (behind) break;
          await new Promise<void>((resolve) => wake = resolve);
          wake = undefined;
        }
      } finally {
        followers.delete(follower);
      }
      // Fell behind: the rest comes from the store once the blob is committed.
      await done;
      yield* await deps.readStored(offset);
    }
    const iterator = chunks();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await iterator.next();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel() {
        // Even if never read from (the client left before its response started).
        cancelled = true;
        followers.delete(follower);
        wake?.();
        await iterator.return(undefined);
      },
    }, { highWaterMark: 0 });
  }
}

/**
 * The chunks on their way to the store's commit: the download puts them (waiting while more than
 * `limit` bytes are queued), the commit drains them. A failure makes the drain throw, so the
 * commit stores nothing; a commit that stops (its own failure) makes every later put a no-op, so
 * the download still serves its clients.
 */
function storeQueue(limit: number) {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let ended = false;
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wakeWriter: (() => void) | undefined;
  let wakeDownload: (() => void) | undefined;
  const wake = (which: "writer" | "download") => {
    const resolve = which === "writer" ? wakeWriter : wakeDownload;
    if (which === "writer") wakeWriter = undefined;
    else wakeDownload = undefined;
    resolve?.();
  };
  /** The commit is over: later puts are dropped. */
  const close = () => {
    closed = true;
    chunks.length = 0;
    bytes = 0;
    wake("download");
  };
  return {
    async put(chunk: Uint8Array): Promise<void> {
      if (closed) return;
      chunks.push(chunk);
      bytes += chunk.length;
      wake("writer");
      while (bytes > limit && !closed) await new Promise<void>((r) => wakeDownload = r);
    },
    end() {
      ended = true;
      wake("writer");
    },
    fail(error: unknown) {
      failure = { error };
      wake("writer");
    },
    close,
    async *drain(): AsyncGenerator<Uint8Array> {
      try {
        while (true) {
          if (failure) throw failure.error;
          const chunk = chunks.shift();
          if (chunk) {
            bytes -= chunk.length;
            if (bytes <= limit) wake("download");
            yield chunk;
            continue;
          }
          if (ended) return;
          await new Promise<void>((r) => wakeWriter = r);
        }
      } finally {
        close();
      }
    },
  };
}
