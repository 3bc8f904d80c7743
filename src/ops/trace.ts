// Owns W3C Trace Context for requests: the incoming `traceparent` continued, or a trace started.
// Implements W3C Trace Context (traceparent version 00); on only with --traceparent.

import type { Exchange, Tap } from "../exchange.ts";

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZEROS = /^0+$/;

/** Random lowercase hex of `bytes` bytes. */
function randomHex(bytes: number): string {
  const data = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A non-zero id (all zeros is invalid in a traceparent). */
function newId(bytes: number): string {
  let id = randomHex(bytes);
  while (ZEROS.test(id)) id = randomHex(bytes);
  return id;
}

/**
 * The trace a request belongs to: its `traceparent` continued with a new span, or a new trace
 * when it has none or an invalid one (version ff, all-zero ids, a version 00 header with extra
 * fields). Version 00 rules apply to versions above it too, as the spec asks.
 */
export function traceOf(header: string | null): NonNullable<Exchange["trace"]> {
  const match = header ? TRACEPARENT.exec(header.trim().toLowerCase()) : null;
  const valid = match && match[1] !== "ff" && !ZEROS.test(match[2]) && !ZEROS.test(match[3]) &&
    (match[1] !== "00" || header!.trim().length === 55);
  if (!valid) return { traceId: newId(16), spanId: newId(8), flags: "01" };
  return { traceId: match[2], spanId: newId(8), parentId: match[3], flags: match[4] };
}

/** The `traceparent` header naming a request's span, for what it calls (webhooks, upstreams). */
export function traceparent(trace: NonNullable<Exchange["trace"]>): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`;
}

/** Gives each request its trace; the access log and events then carry it. */
export function traceTap(): Tap {
  return {
    received(exchange) {
      exchange.trace = traceOf(exchange.request.headers.get("traceparent"));
    },
  };
}
