// Owns blobs taken in while they stream elsewhere (a pull-through cache serving clients): hashed as
// they arrive, written behind them, with the digest's verdict before the write is done.

/*
 * `commitBlob` hashes bytes at the pace the storage takes them, and its verdict comes with the
 * commit. A caller that hands the same bytes to clients as they arrive needs the verdict as soon
 * as the last byte is in (it holds the last chunk back until then), and must not be paced by
 * every stall of the disk. So here each chunk is hashed as it is taken from the source and queued
 * for the write, which may fall up to `lag` bytes behind before the source waits; `verified`
 * settles when the whole source is hashed, `committed` when the blob is stored and linked. The
 * bytes are hashed once: the write trusts the verdict (a mismatch fails the write, nothing is
 * stored). Chunks are held until written, so the source must not reuse their buffers.
 */

import { createHasher, finish } from "../digest.ts";
import type { Digest } from "../grammar.ts";
import type { StoreState } from "./state.ts";
import { digestMismatch, storeBlob } from "./uploads.ts";

/** Bytes the write may fall behind the source, by default. */
export const INGEST_LAG_BYTES = 16 * 1024 * 1024;

export interface Ingest {
  /** Settles once every byte is in and hashed; rejects on a mismatch or a failed source. */
  verified: Promise<void>;
  /** Settles once the blob is stored and linked (after `verified`), or rejects. */
  committed: Promise<void>;
}

export function ingestBlob(
  state: StoreState,
  name: string,
  digest: Digest,
  chunks: AsyncIterable<Uint8Array>,
  lag = INGEST_LAG_BYTES,
): Ingest {
  const queue = writeQueue(lag);
  const committed = storeBlob(state, name, digest, queue.drain());
  // A write that fails before it drains the queue must not hold the source up.
  committed.catch(() => queue.close());
  const verified = (async () => {
    const hash = createHasher(digest.algorithm);
    try {
      for await (const chunk of chunks) {
        hash.update(chunk);
        await queue.put(chunk);
      }
      const actual = finish(hash, digest.algorithm);
      if (actual !== digest.value) throw digestMismatch(digest, actual);
      queue.end();
    } catch (error) {
      queue.fail(error);
      throw error;
    }
  })();
  return {
    verified,
    // A failed source is the reason (the write only echoes it).
    committed: verified.then(() => committed, (error) => {
      committed.catch(() => {});
      throw error;
    }),
  };
}

/**
 * Chunks on their way to the write: `put` waits while more than `limit` bytes are queued; a
 * failure makes the drain throw (the write then stores nothing); once the write is over (done or
 * failed) puts are dropped, so the source is never held up by a write that has stopped.
 */
function writeQueue(limit: number) {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let ended = false;
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wakeWriter: (() => void) | undefined;
  let wakeSource: (() => void) | undefined;
  const wake = (which: "writer" | "source") => {
    const resolve = which === "writer" ? wakeWriter : wakeSource;
    if (which === "writer") wakeWriter = undefined;
    else wakeSource = undefined;
    resolve?.();
  };
  const close = () => {
    closed = true;
    chunks.length = 0;
    bytes = 0;
    wake("source");
  };
  return {
    async put(chunk: Uint8Array): Promise<void> {
      if (closed) return;
      chunks.push(chunk);
      bytes += chunk.length;
      wake("writer");
      while (bytes > limit && !closed) await new Promise<void>((r) => wakeSource = r);
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
            if (bytes <= limit) wake("source");
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
