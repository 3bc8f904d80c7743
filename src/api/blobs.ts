// Owns blob reads and deletes over HTTP: GET/HEAD with Range, DELETE of a repository's link.
// Implements distribution-spec v1.1 end-2 (pull blobs) and end-10 (delete blobs).

import { RegistryError } from "../errors.ts";
import { requireDigest } from "../grammar.ts";
import { type Context, repositoryName } from "../http.ts";
import type { ByteRange } from "../store/store.ts";

export async function getBlob(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const digest = requireDigest(ctx.params.digest ?? null);
  const size = await ctx.store.blobs.size(name, digest);
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
  // Access was checked before the handler ran: only then may the client be sent to the bucket.
  const body = await ctx.store.blobs.read(name, digest, range, true);
  if ("redirect" in body) {
    return new Response(null, {
      status: 307,
      headers: { "location": body.redirect, "docker-content-digest": digest.value },
    });
  }
  return new Response(body, { status, headers });
}

export async function deleteBlob(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const digest = requireDigest(ctx.params.digest ?? null);
  await ctx.store.blobs.delete(name, digest);
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
