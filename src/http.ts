// Owns the HTTP plumbing shared by the API modules: handler context, URLs, pagination, bodies.
// Implements the spec's Location/Link rules (absolute URLs as the client reached us, RFC 5988 Link).

import { concat, reusedChunks } from "./bytes.ts";
import { RegistryError } from "./errors.ts";
import { isHost } from "./forwarded.ts";
import { requireName } from "./grammar.ts";
import type { Page, Store } from "./store/store.ts";
import type { Access, Authorizer, AuthRequest } from "./auth/types.ts";
import type { Ui } from "./ui/state.ts";
import { bodyWatch } from "./listen.ts";
import type { Health } from "./ops/health.ts";
import type { Metrics } from "./ops/metrics.ts";

/** What the operations routes serve (src/ops/endpoints.ts). */
export interface Ops {
  health: Health;
  /** Absent when metrics are off or served on their own listener (--metrics-addr). */
  metrics?: Metrics;
}

export interface Context extends AuthRequest {
  store: Store;
  /** HEAD is served by the GET handler; it must not open bodies it will not send. */
  head: boolean;
  /** Set when auth is on. */
  auth?: Authorizer;
  /** Who asks and what they may read; absent when auth is off (everything allowed). */
  access?: Access;
  /** The web UI's state, for its routes (src/ui/state.ts); absent with --no-ui. */
  ui?: Ui;
  /** Health and metrics (src/ops); absent in an app built without them. */
  ops?: Ops;
}

export type Handler = (ctx: Context) => Promise<Response>;

/** The repository name from the route, checked against the spec's grammar. */
export function repositoryName(ctx: Context): string {
  return requireName(ctx.params.name ?? "");
}

/**
 * An absolute URL for a path, as the client reached us: through a trusted proxy, the scheme and
 * host it forwarded. A Host that is no host name is refused, never copied into a header.
 */
export function externalUrl(ctx: AuthRequest, pathAndQuery: string): string {
  const proto = ctx.forwarded?.proto ?? ctx.url.protocol.slice(0, -1);
  const host = ctx.forwarded?.host ?? ctx.request.headers.get("host") ?? ctx.url.host;
  if (!isHost(host)) throw new RegistryError("UNSUPPORTED", "invalid Host header", { status: 400 });
  return `${proto}://${host}${pathAndQuery}`;
}

/** How a listing is paged: its default and largest `n`, and whether a larger `n` is an error. */
export interface Paging {
  size: number;
  max: number;
  strict?: boolean;
}

/** Reads `n` and `last`; `n` above the max is clamped, or refused when `strict`. */
export function pageParams(url: URL, paging: Paging): Page {
  const raw = url.searchParams.get("n");
  const last = url.searchParams.get("last") ?? undefined;
  if (raw === null || raw === "") return { n: paging.size, last };
  if (!/^\d{1,9}$/.test(raw) || (paging.strict && Number(raw) > paging.max)) {
    throw new RegistryError(
      "PAGINATION_NUMBER_INVALID",
      "n must be an integer from 0 to " + paging.max,
      { detail: { n: raw } },
    );
  }
  return { n: Math.min(Number(raw), paging.max), last };
}

/** Headers of a page: `Link: <url>; rel="next"` when another page follows, with the same `n`. */
export function pageHeaders(ctx: Context, page: Page, next: string | undefined): Headers {
  const headers = new Headers();
  if (next === undefined) return headers;
  const url = new URL(ctx.url);
  url.searchParams.set("n", String(page.n));
  url.searchParams.set("last", next);
  headers.set("link", `<${externalUrl(ctx, url.pathname + url.search)}>; rel="next"`);
  return headers;
}

/** Bytes read so far from each request's body (weakly held: gone with the request). */
const bodyBytes = new WeakMap<Request, number>();

/** Bytes of the request's body read so far, counted as they are read (chunked bodies too). */
export function bodyBytesRead(request: Request): number {
  return bodyBytes.get(request) ?? 0;
}

/** The request body as the store takes it; undefined when the request has none. */
export function bodyOf(request: Request): AsyncIterable<Uint8Array> | undefined {
  return request.body ? bodyChunks(request) : undefined;
}

/**
 * 64 KiB: Deno 2.9 reads 1 MiB views far slower, 16 concurrent uploads at a third of the speed and
 * a chunked 1 GiB body at 0.3–0.5 GB/s with ~120 MiB RSS (2.9–3.1 GB/s, ~54 MiB with 64 KiB).
 */
const BODY_READ_BYTES = 64 * 1024;

/**
 * Reading a body lasts at most this long (ms) before the event loop goes round once. Deno
 * completes a read whose bytes are already there without going round, so a body arriving faster
 * than it is stored (a fast client on loopback or a LAN) held every other connection until it
 * ended (a 1 GiB push held `GET /v2/` for most of a second, a chunked one for seconds).
 */
const BODY_SLICE_MS = 10;

/**
 * The request body as chunks; an absent body is empty. The chunks are views of one reused buffer
 * (src/bytes.ts): each is valid only until the next is requested. Reading into one buffer spares
 * a fresh allocation per 64 KiB of body, which costs page faults and RSS on a 1 GiB push.
 */
export async function* bodyChunks(request: Request): AsyncGenerator<Uint8Array> {
  if (!request.body) return;
  const readBytes = lengthUnknown(request) ? CHUNKED_READ_BYTES : BODY_READ_BYTES;
  const chunks = reusedChunks(request.body, BODY_READ_BYTES, bodyWatch(request), readBytes);
  let sliceStart = performance.now();
  for await (const chunk of chunks) {
    bodyBytes.set(request, (bodyBytes.get(request) ?? 0) + chunk.length);
    yield chunk;
    if (performance.now() - sliceStart < BODY_SLICE_MS) continue;
    // A timer, not a resolved promise: only waiting for one lets Deno's runtime poll its sockets
    // and serve the requests waiting there.
    await new Promise((resolve) => setTimeout(resolve, 0));
    sliceStart = performance.now();
  }
}

/**
 * A chunked body (`Transfer-Encoding: chunked`, as docker streams a layer) is read in 4 KiB
 * pieces gathered into the usual buffer: in Deno 2.9 a read of such a body costs more the more
 * bytes it asks for, and once the event loop has gone round inside the body, reads of 16 KiB or
 * more slow it down tens of times (the process spends its time in `memmove`); small reads do not
 * (README, "The event loop under big transfers"). Re-measure on a Deno upgrade.
 */
const CHUNKED_READ_BYTES = 4 * 1024;

/** Chunked, or with no Content-Length at all: read as a chunked body is. */
function lengthUnknown(request: Request): boolean {
  return /chunked/i.test(request.headers.get("transfer-encoding") ?? "") ||
    !request.headers.has("content-length");
}

/**
 * Reads a small body whole; beyond `limit` bytes it is 413, without reading further. What it
 * may hold comes out of the app's byte budget first (its declared length, else `limit`): when
 * the budget is spent the request is 503 with Retry-After instead of another buffer. A body that
 * breaks off before its Content-Length, or whose framing is malformed, is 400 SIZE_INVALID.
 */
export async function readLimited(
  ctx: Pick<Context, "request" | "budget">,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const { request } = ctx;
  const tooBig = () =>
    new RegistryError("SIZE_INVALID", `body exceeds ${limit} bytes`, { status: 413 });
  const header = request.headers.get("content-length");
  // Not a number (`2, 2` from duplicate headers): as if absent, or NaN would poison the budget.
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > limit) throw tooBig();
  const reserved = declared ?? limit;
  if (ctx.budget && !ctx.budget.take(reserved)) {
    throw new RegistryError("UNAVAILABLE", "too many request bodies in flight, retry later", {
      headers: { "retry-after": "1" },
    });
  }
  try {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of bodyChunks(request)) {
      size += chunk.length;
      if (size > limit) throw tooBig();
      chunks.push(chunk.slice()); // the view is reused by the next read
    }
    return concat(chunks, size);
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    throw new RegistryError("SIZE_INVALID", "the request body could not be read whole", {
      detail: { reason: String(error) },
    });
  } finally {
    ctx.budget?.give(reserved);
  }
}

export function json(value: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  if (!headers.has("content-type")) headers.set("content-type", "application/json");
  const body = new TextEncoder().encode(JSON.stringify(value));
  headers.set("content-length", String(body.length));
  return new Response(body, { ...init, headers });
}
