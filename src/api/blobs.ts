// Owns blob reads and deletes: GET/HEAD with Range, DELETE of a repository's link.
// Implements distribution-spec v1.1 end-2 (pull blobs) and end-10 (delete blobs).

import { RegistryError } from "../errors.ts";
import { type Digest, requireDigest } from "../grammar.ts";
import { type Context, repositoryName, requireDeleteEnabled } from "../http.ts";
import { linkedBlobSize, type Registry } from "../registry.ts";
import { blobPath, layerLinkPath } from "../storage/paths.ts";
import type { ByteRange } from "../storage/driver.ts";
import { quarantineBlob } from "../fsck.ts";
import { log } from "../log.ts";
import { verifiedBlobs } from "../verify.ts";
import { digestOfStream } from "../digest.ts";

export async function getBlob(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const digest = requireDigest(ctx.params.digest ?? null);
  const size = await linkedBlobSize(ctx.registry, name, digest);
  if (size === undefined) {
    throw new RegistryError("BLOB_UNKNOWN", undefined, { detail: { digest: digest.value } });
  }

  const headers = new Headers({
    "content-type": "application/octet-stream",
    "docker-content-digest": digest.value,
    "etag": `"${digest.value}"`,
    "accept-ranges": "bytes",
    "cache-control": "max-age=31536000",
  });
  const range = parseRange(ctx.request.headers.get("range"), size);
  if (range === "unsatisfiable") {
    throw new RegistryError("RANGE_INVALID", "requested range not satisfiable", {
      status: 416,
      headers: { "content-range": `bytes */${size}` },
    });
  }
  const status = range ? 206 : 200;
  headers.set("content-length", String(range ? range.end - range.start : size));
  if (range) headers.set("content-range", `bytes ${range.start}-${range.end - 1}/${size}`);
  if (ctx.head) return new Response(null, { status, headers });
  if (!range) await checkOnFirstPull(ctx.registry, digest);
  // Straight from the driver: a file's stream is resource-backed, sent without passing through JS.
  const body = await ctx.registry.driver.read(blobPath(digest), range);
  return new Response(body, { status, headers });
}

/**
 * The first full pull of a blob in this process hashes its stored bytes before any is sent (a
 * GiB costs ~0.9 s before the first byte; later pulls skip it, and `fsck` re-hashes everything).
 * Bad bytes are logged and quarantined, and the client gets BLOB_UNKNOWN instead of a wrong blob.
 * Stores that checksum their own data (S3) are trusted: there a re-hash costs a fifth of pull
 * throughput and finds nothing S3 would not.
 */
async function checkOnFirstPull(registry: Registry, digest: Digest): Promise<void> {
  const verified = verifiedBlobs(registry);
  if (registry.driver.checksummed || verified.has(digest.value)) return;
  const stream = await registry.driver.read(blobPath(digest));
  const actual = await digestOfStream(stream, digest.algorithm);
  if (actual === digest.value) return verified.add(digest.value);
  log.error("blob corrupt on read", { "blob.digest": digest.value, "blob.actual": actual });
  const key = await quarantineBlob(registry, digest);
  log.error("blob quarantined", { "blob.digest": digest.value, "storage.key": key });
  throw new RegistryError("BLOB_UNKNOWN", "blob failed its digest check and was quarantined", {
    detail: { digest: digest.value },
  });
}

export async function deleteBlob(ctx: Context): Promise<Response> {
  requireDeleteEnabled(ctx);
  const name = repositoryName(ctx);
  const digest = requireDigest(ctx.params.digest ?? null);
  if (await linkedBlobSize(ctx.registry, name, digest) === undefined) {
    throw new RegistryError("BLOB_UNKNOWN", undefined, { detail: { digest: digest.value } });
  }
  // Only the repository's link goes; the bytes stay for other repositories (and GC).
  await ctx.registry.driver.delete(layerLinkPath(name, digest));
  return new Response(null, { status: 202, headers: { "docker-content-digest": digest.value } });
}

/**
 * RFC 9110 single byte ranges: `bytes=a-b`, `bytes=a-`, `bytes=-n`. Anything else (several
 * ranges, bad syntax) is ignored and the whole blob is served, as the RFC allows.
 */
export function parseRange(
  header: string | null,
  size: number,
): ByteRange | "unsatisfiable" | undefined {
  const match = header && /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(match[1]);
  const last = match[2] === "" ? undefined : Number(match[2]);
  if (last !== undefined && last < start) return undefined;
  if (start >= size) return "unsatisfiable"; // `bytes=<size>-` too
  return { start, end: Math.min(last ?? size - 1, size - 1) + 1 };
}
