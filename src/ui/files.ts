// Owns listing the files of a layer: the blob streamed, decompressed (gzip, zstd) and read as tar.
// Implements OCI image-spec layer.md's media types (tar, tar+gzip, tar+zstd) and whiteouts, read-only.

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import { RegistryError } from "../errors.ts";
import { requireDigest } from "../grammar.ts";
import { type Context, json, repositoryName } from "../http.ts";
import { log } from "../log.ts";
import type { Compression, FileListing } from "./state.ts";
import { tarEntries, TarError } from "./tar.ts";

export type { FileListing };

/** Entries listed at most, and uncompressed bytes read at most, per layer. */
export const LISTING_LIMITS = { entries: 20_000, bytes: 2 * 1024 * 1024 * 1024 };
/** Layers decompressed at once (each costs a core while it runs). */
const MAX_RUNNING = 2;

/** The compression a blob's first bytes announce. */
export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/**
 * The uncompressed bytes of a blob stream, and the compression found. The first chunk decides
 * (a stored stream's first read is far longer than the 4 magic bytes).
 */
async function decompressed(
  stream: ReadableStream<Uint8Array>,
): Promise<{ compression: Compression; chunks: AsyncIterable<Uint8Array>; stop: () => void }> {
  const reader = stream.getReader();
  const first = await reader.read();
  const head = first.value ?? new Uint8Array(0);
  async function* source() {
    try {
      if (head.length > 0) yield head;
      if (first.done) return;
      while (true) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
  const compression = detectCompression(head);
  if (compression === "none") {
    const chunks = source();
    return { compression, chunks, stop: () => void chunks.return(undefined) };
  }
  const decompressor = compression === "gzip" ? zlib.createGunzip() : zlib.createZstdDecompress();
  const input = Readable.from(source(), { objectMode: false });
  // The pipeline's own error surfaces through the decompressor's iteration.
  pipeline(input, decompressor).catch(() => {});
  return {
    compression,
    chunks: decompressor as AsyncIterable<Uint8Array>,
    stop: () => {
      input.destroy();
      decompressor.destroy();
    },
  };
}

/** Counts the bytes that pass, and ends the stream early once `limit` is passed. */
async function* counted(
  chunks: AsyncIterable<Uint8Array>,
  counter: { bytes: number; limit: number; hit: boolean },
) {
  for await (const chunk of chunks) {
    counter.bytes += chunk.length;
    yield chunk;
    if (counter.bytes >= counter.limit) {
      counter.hit = true;
      return;
    }
  }
}

/** Lists a layer's entries within the limits. */
export async function listLayer(
  ctx: Context,
  name: string,
  digestValue: string,
  limits = LISTING_LIMITS,
): Promise<FileListing> {
  const digest = requireDigest(digestValue);
  const size = await ctx.store.blobs.size(name, digest);
  if (size === undefined) {
    throw new RegistryError("BLOB_UNKNOWN", undefined, { detail: { digest: digest.value } });
  }
  const { compression, chunks, stop } = await decompressed(
    await ctx.store.blobs.read(name, digest),
  );
  const counter = { bytes: 0, limit: limits.bytes, hit: false };
  const listing: FileListing = {
    digest: digest.value,
    size,
    compression,
    entries: [],
    scanned: 0,
    limits,
  };
  try {
    for await (const entry of tarEntries(counted(chunks, counter))) {
      if (listing.entries.length >= limits.entries) {
        listing.truncated = "entries";
        break;
      }
      const base = entry.path.slice(entry.path.lastIndexOf("/") + 1);
      listing.entries.push(base.startsWith(".wh.") ? { ...entry, whiteout: true } : entry);
    }
    if (counter.hit && !listing.truncated) listing.truncated = "bytes";
  } catch (error) {
    if (counter.hit) listing.truncated = "bytes";
    else if (error instanceof TarError) {
      throw new RegistryError(
        "UNSUPPORTED",
        `this blob is not a readable tar archive: ${error.message}`,
        {
          status: 415,
          detail: { digest: digest.value, compression },
        },
      );
    } else if (error instanceof RegistryError) throw error;
    else {
      log.info("ui layer unreadable", { "blob.digest": digest.value, error });
      throw new RegistryError("UNSUPPORTED", `this blob does not decompress as ${compression}`, {
        status: 415,
        detail: { digest: digest.value, compression },
      });
    }
  } finally {
    stop();
  }
  listing.scanned = counter.bytes;
  return listing;
}

/**
 * GET /ui/api/r/<name>/blobs/<digest>/files — a layer's file list. Listings are cached by digest
 * (a blob never changes); at most MAX_RUNNING layers are read at once, beyond that 503.
 */
export async function listFiles(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const digest = requireDigest(ctx.params.digest ?? null);
  const ui = ctx.ui!;
  const cached = ui.listings.get(digest.value);
  // Cached by digest, but served only where the blob is linked.
  if (cached && await ctx.store.blobs.size(name, digest) !== undefined) return json(cached);
  if (ui.listingsRunning.count >= MAX_RUNNING) {
    throw new RegistryError("UNAVAILABLE", "other layers are being read; retry shortly", {
      headers: { "retry-after": "2" },
    });
  }
  ui.listingsRunning.count++;
  try {
    const listing = await listLayer(ctx, name, digest.value);
    ui.listings.set(digest.value, listing, listing.entries.length * 128);
    return json(listing);
  } finally {
    ui.listingsRunning.count--;
  }
}
