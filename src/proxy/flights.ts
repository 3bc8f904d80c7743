// Owns blob fetches in flight: one upstream download per missing blob, streamed into storage and
// to every client that asked for it at once, with nothing held whole in memory (issue 13).

/*
 * A flight reads the upstream's body once, into the store's ingest (src/store/ingest.ts), which
 * hashes each chunk as it takes it and writes it behind (the blob appears only if its digest
 * holds). Each chunk, once the next one has arrived, is handed to the clients reading along; the
 * last one only once the whole body hashed right: a client never receives a whole blob with the
 * wrong bytes; on a mismatch its response breaks off instead, and nothing is stored. Clients are
 * not paced by the disk (the write may lag behind); they finish when the bytes are verified.
 *
 * Clients join while the flight's first HEAD_BYTES are still in memory (they get those first,
 * then follow live); later ones wait for the commit and read from the store. A client more than
 * LAG_BYTES behind the download stops following and finishes from the store after the commit, so
 * a slow client never slows the download nor holds memory. A client that goes away just stops
 * following: the download and the commit go on for the others and for the cache.
 */

import type { Ingest } from "../store/store.ts";

/** Bytes kept from a flight's start, for clients that join it. */
const HEAD_BYTES = 8 * 1024 * 1024;
/** Bytes a client may fall behind the download before it finishes from the store instead. */
const LAG_BYTES = 16 * 1024 * 1024;
/**
 * A chunk of the download gathers at least this much before it is handed on: reads into 1 MiB
 * buffers (a byte stream's BYOB reads) instead of fetch's 64 KiB chunks halve the CPU a download
 * costs, and every step after (hash, write, clients' responses) takes fewer, larger chunks.
 */
const GATHER_BYTES = 512 * 1024;
const CHUNK_BYTES = 1024 * 1024;
/** An upstream body that sends nothing for this long is given up (ms). */
const DEFAULT_IDLE_TIMEOUT = 60_000;

export interface FlightSource {
  /** The upstream's body (fresh chunks: the store holds them until written). */
  body: ReadableStream<Uint8Array>;
  /** Its length, from Content-Length. */
  size: number | undefined;
  /** Aborts the upstream request (idle timeout). */
  abort(reason: Error): void;
}

export interface FlightDeps {
  /** The store's ingest of the blob: hashed as it arrives, written behind. */
  ingest(chunks: AsyncIterable<Uint8Array>): Ingest;
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
  /** The latest chunk, handed out when the next arrives (the last: once verified). */
  let held: Uint8Array | undefined;

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

  const idleTimeout = deps.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
  async function* download(): AsyncGenerator<Uint8Array> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** Each read of the upstream must bring something within the idle timeout. */
    const watched = <T>(read: Promise<T>) => {
      clearTimeout(timer);
      timer = setTimeout(
        () => source.abort(new Error(`the upstream sent nothing for ${idleTimeout} ms`)),
        idleTimeout,
      );
      return read.finally(() => clearTimeout(timer));
    };
    try {
      for await (const chunk of gathered(source.body, watched)) {
        if (held) release(held);
        held = chunk;
        yield chunk;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  const { verified, committed } = deps.ingest(download());
  verified.then(() => {
    if (held) release(held);
    held = undefined;
    settle(undefined);
  }, (error) => settle({ error }));
  const done = committed;
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
 * The body in fresh chunks of GATHER_BYTES to CHUNK_BYTES (the last may be shorter), each read
 * passed through `watch`; a stream that is not a byte stream is passed through as it comes. A
 * failure, or a consumer that stops early, cancels the body.
 */
async function* gathered(
  body: ReadableStream<Uint8Array>,
  watch: <T>(read: Promise<T>) => Promise<T>,
): AsyncGenerator<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    const plain = body.getReader();
    try {
      while (true) {
        const { done, value } = await watch(plain.read());
        if (done) return;
        yield value;
      }
    } finally {
      plain.cancel().catch(() => {});
    }
  }
  let finished = false;
  try {
    let buffer = new ArrayBuffer(CHUNK_BYTES);
    let filled = 0;
    while (true) {
      const { done, value } = await watch(reader.read(new Uint8Array(buffer, filled)));
      if (value) {
        buffer = value.buffer as ArrayBuffer;
        filled += value.length;
      }
      if (done) break;
      if (filled >= GATHER_BYTES) {
        yield new Uint8Array(buffer, 0, filled);
        buffer = new ArrayBuffer(CHUNK_BYTES);
        filled = 0;
      }
    }
    if (filled > 0) yield new Uint8Array(buffer, 0, filled);
    finished = true;
  } finally {
    if (finished) reader.releaseLock();
    else reader.cancel().catch(() => {});
  }
}
