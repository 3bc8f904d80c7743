// Owns the access log (a line per request) and the audit log (a line per write or delete, and who).
// No spec section: stable dotted keys (ECS-like) an operator can search and alert on.

import type { Exchange, Tap } from "../exchange.ts";
import { bodyBytesRead } from "../http.ts";
import { batchedWrites, log } from "../log.ts";

/**
 * Body bytes an answer sends: none for HEAD, 204 and 304, else its Content-Length. (Never
 * `response.body`: reading it turns a body of bytes into a stream, which Deno then sends slower,
 * and not at all to a client that half-closed its side.)
 */
export function sentBytes(exchange: Exchange, response: Response): number | undefined {
  const { status } = response;
  if (exchange.request.method === "HEAD" || status === 204 || status === 304) return undefined;
  const length = response.headers.get("content-length");
  return length === null ? undefined : Number(length);
}

/** The user a request was authorized as, or `anonymous`. */
export const userOf = (exchange: Exchange): string => exchange.ctx?.access?.user ?? "anonymous";

/**
 * One line per request once it is answered. The request body's size is what was read of it
 * (a chunked PATCH counts its bytes; an unread body counts 0); a HEAD logs no response size.
 */
export function accessLog(): Tap {
  return {
    answered(exchange, response) {
      const { request, url } = exchange;
      const sent = sentBytes(exchange, response);
      log.info("request", {
        "http.request.id": exchange.id,
        "http.request.method": request.method,
        "url.path": exchange.path,
        "url.query": url?.search.slice(1) ?? "",
        "http.route": exchange.route?.spec ?? "none",
        "user.name": userOf(exchange),
        "client.address": exchange.client,
        "user_agent.original": request.headers.get("user-agent") ?? undefined,
        "http.request.body.size": bodyBytesRead(request),
        "http.response.status": response.status,
        ...(sent !== undefined && { "http.response.body.size": sent }),
        ...(exchange.errorCode && { "error.code": exchange.errorCode }),
        ...(exchange.trace &&
          { "trace.id": exchange.trace.traceId, "span.id": exchange.trace.spanId }),
        "duration_ms": Math.round((performance.now() - exchange.started) * 100) / 100,
      });
    },
  };
}

export interface AuditLog extends Tap {
  /** Flushes and closes the file. */
  close(): Promise<void>;
}

/**
 * `--audit-log FILE`: a JSON line for every request that writes or deletes (routes whose action
 * is push or delete, all methods but GET/HEAD), refused ones too, with who sent it. Accepted
 * PATCHes are left out: an upload's chunks are recorded by its completion (the PUT).
 */
export async function openAuditLog(path: string): Promise<AuditLog> {
  const file = await Deno.open(path, { append: true, create: true });
  const writer = batchedWrites(file).getWriter();
  const encoder = new TextEncoder();
  return {
    answered(exchange, response) {
      const { request, ctx } = exchange;
      const action = exchange.route?.action;
      if (!ctx || (action !== "push" && action !== "delete")) return;
      const { url } = ctx;
      if (request.method === "GET" || request.method === "HEAD") return;
      if (request.method === "PATCH" && response.ok) return;
      const params = ctx.params;
      const record = {
        "@timestamp": new Date().toISOString(),
        "event.action": action,
        "user.name": userOf(exchange),
        "client.address": exchange.client,
        "http.request.id": exchange.id,
        "http.request.method": request.method,
        "http.route": exchange.route?.spec,
        "url.path": url.pathname,
        "repository": params.name,
        "reference": params.reference ?? params.digest ?? url.searchParams.get("digest") ??
          url.searchParams.get("mount") ?? undefined,
        "digest": response.headers.get("docker-content-digest") ?? undefined,
        "http.response.status": response.status,
        ...(exchange.errorCode && { "error.code": exchange.errorCode }),
        ...(exchange.trace && { "trace.id": exchange.trace.traceId }),
      };
      writer.write(encoder.encode(JSON.stringify(record) + "\n")).catch((error) =>
        log.error("audit log write failed", { "file.path": path, error })
      );
    },
    async close() {
      await writer.close().catch(() => {});
      file.close();
    },
  };
}
