// Owns what the proxy store's parts share: one client per upstream, work shared by concurrent
// callers, the log line of each proxied answer, and upstream failures as local errors (issue 13).

import { concat } from "../bytes.ts";
import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import type { Store } from "../store/store.ts";
import {
  type ClientDeps,
  createUpstreamClient,
  type UpstreamClient,
  UpstreamError,
} from "./client.ts";
import type { Upstream } from "./config.ts";
import type { ProxiedName } from "./routing.ts";

export interface ProxyDeps extends ClientDeps {
  /** A body that sends nothing this long is given up (ms; src/proxy/flights.ts). */
  idleTimeout?: number;
}

/** How a proxied request was answered (`proxy.result` in the logs). */
export type Result = "hit" | "miss" | "revalidated" | "stale";

export interface ProxyContext {
  local: Store;
  proxied(name: string): ProxiedName | undefined;
  client(route: ProxiedName): UpstreamClient;
  now(): number;
  deps: ProxyDeps;
  /** Runs `work` once for concurrent callers of the same key (a tag's refresh, a blob's HEAD). */
  once<T>(key: string, work: () => Promise<T>): Promise<T>;
  /** Logs a proxied answer: `proxy.upstream`, `proxy.result` and the upstream's time. */
  report(
    route: ProxiedName,
    name: string,
    reference: string,
    result: Result,
    upstreamMs?: number,
    error?: unknown,
  ): void;
}

export function createContext(
  local: Store,
  upstreams: readonly Upstream[],
  proxied: (name: string) => ProxiedName | undefined,
  deps: ProxyDeps,
): ProxyContext {
  const clients = new Map(upstreams.map((u) => [u.name, createUpstreamClient(u, deps)]));
  const shared = new Map<string, Promise<unknown>>();
  return {
    local,
    proxied,
    client: (route) => clients.get(route.upstream.name)!,
    now: deps.now ?? Date.now,
    deps,
    once<T>(key: string, work: () => Promise<T>): Promise<T> {
      let pending = shared.get(key) as Promise<T> | undefined;
      if (!pending) {
        pending = work().finally(() => shared.delete(key));
        shared.set(key, pending);
      }
      return pending;
    },
    report(route, name, reference, result, upstreamMs, error) {
      const fields: Record<string, unknown> = {
        "proxy.upstream": route.upstream.name,
        "proxy.result": result,
        "proxy.repository": name,
        "proxy.reference": reference,
      };
      if (upstreamMs !== undefined) {
        fields["proxy.upstream_ms"] = Math.round(upstreamMs * 100) / 100;
      }
      if (error) fields["error.message"] = (error as Error).message;
      if (result === "stale") log.warn("proxy served stale", fields);
      else log.info("proxy", fields);
    },
  };
}

/** Seconds a client is asked to wait when the upstream cannot be reached. */
const RETRY_AFTER_SECONDS = "5";

/**
 * An upstream failure as the client sees it: unreachable or rate-limited → 503 with Retry-After,
 * denied → 403, a failed or invalid answer → 502. Other errors pass through as they are.
 */
export function localError(error: unknown): unknown {
  if (!(error instanceof UpstreamError)) return error;
  switch (error.kind) {
    case "unreachable":
      return new RegistryError("UNAVAILABLE", error.message, {
        headers: { "retry-after": RETRY_AFTER_SECONDS },
      });
    case "rate-limited":
      return new RegistryError("UNAVAILABLE", error.message, {
        headers: { "retry-after": error.retryAfter ?? RETRY_AFTER_SECONDS },
      });
    case "denied":
      return new RegistryError("DENIED", error.message);
    default:
      return new RegistryError("UNAVAILABLE", error.message, { status: 502 });
  }
}

/** An UpstreamError of kind `failed` in the upstream's name. */
export function upstreamFailed(route: ProxiedName, message: string): UpstreamError {
  const name = route.upstream.name;
  return new UpstreamError(name, "failed", `upstream ${name}: ${message}`);
}

/** A small body read whole, or undefined past `limit` bytes. */
export async function readCapped(
  response: Response,
  limit: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return concat(chunks, size);
}

/** A JSON object, or undefined. */
export function parseJson<T>(bytes: Uint8Array): T | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}
