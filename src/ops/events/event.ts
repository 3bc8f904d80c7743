// Owns what an answered request means as registry events: push, pull, delete, mount, and their form.
// Implements CNCF distribution's notification event (notifications/event.go, envelope media type v1).

import type { Exchange } from "../../exchange.ts";
import { bodyBytesRead, externalUrl } from "../../http.ts";
import { parseDigest } from "../../grammar.ts";
import { traceparent } from "../trace.ts";
import type { EventAction } from "./settings.ts";

export const EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";
/** What distribution gives a blob's target (it does not know a layer's own media type). */
const BLOB_MEDIA_TYPE = "application/octet-stream";

/** One event as receivers of distribution's webhooks read it. */
export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: EventAction;
  target: {
    mediaType?: string;
    digest?: string;
    size?: number;
    /** The same as size (distribution keeps it for older receivers). */
    length?: number;
    repository: string;
    fromRepository?: string;
    url?: string;
    tag?: string;
  };
  request: { id: string; addr?: string; host?: string; method: string; useragent: string };
  actor: { name?: string };
  source: { addr: string; instanceID: string };
}

/** An event with the trace of the request that caused it, as the outbox stores it. */
export interface StoredEvent {
  event: RegistryEvent;
  traceparent?: string;
}

/** The registry node events come from: host:port and an id that changes at each start. */
export interface EventSource {
  addr: string;
  instanceID: string;
}

/**
 * The events an answered request caused, by route (spec id), method and status. Pushes and mounts
 * of blobs learn the size from the store (one stat) when the request did not carry the bytes;
 * a manifest push reads its media type back (from the cache, except on shared storage).
 * HEAD is never a pull; a ranged GET is one only when it starts at byte 0 (a download's start).
 */
export async function eventsOf(
  exchange: Exchange,
  response: Response,
  source: EventSource,
): Promise<StoredEvent[]> {
  const { ctx, route, request } = exchange;
  const method = request.method;
  if (!ctx || !route || response.status >= 300 || method === "HEAD") return [];
  if (!EVENT_ROUTES.includes(route.spec)) return [];
  const name = ctx.params.name;
  if (name === undefined) return [];
  const make = (action: EventAction, target: Omit<RegistryEvent["target"], "repository">) => [{
    event: {
      id: crypto.randomUUID(),
      timestamp: new Date().toISOString(),
      action,
      target: { ...target, repository: name, ...sized(target.size) },
      request: {
        id: exchange.id,
        ...(exchange.client && { addr: exchange.client }),
        ...(request.headers.has("host") && { host: request.headers.get("host")! }),
        method,
        useragent: request.headers.get("user-agent") ?? "",
      },
      actor: ctx.access?.user === undefined ? {} : { name: ctx.access.user },
      source,
    },
    ...(exchange.trace && { traceparent: traceparent(exchange.trace) }),
  }];
  const headerDigest = response.headers.get("docker-content-digest") ?? undefined;
  const blobUrl = (digest: string) => externalUrl(ctx, `/v2/${name}/blobs/${digest}`);
  const manifestUrl = (digest: string) => externalUrl(ctx, `/v2/${name}/manifests/${digest}`);
  const blobSize = async (digest: string) => {
    const parsed = parseDigest(digest);
    return parsed && await ctx.store.blobs.size(name, parsed);
  };
  const reference = ctx.params.reference;
  const tag = reference !== undefined && parseDigest(reference) === undefined
    ? reference
    : undefined;

  switch (`${route.spec} ${method} ${response.status}`) {
    case "end-3/7/9 GET 200": {
      const digest = headerDigest!;
      return make("pull", {
        mediaType: response.headers.get("content-type") ?? undefined,
        digest,
        size: Number(response.headers.get("content-length")),
        url: manifestUrl(digest),
        ...(tag && { tag }),
      });
    }
    case "end-3/7/9 PUT 201": {
      const digest = headerDigest!;
      const stored = await ctx.store.manifests.get(name, { digest: parseDigest(digest)! });
      return make("push", {
        mediaType: stored?.mediaType ?? request.headers.get("content-type") ?? undefined,
        digest,
        size: bodyBytesRead(request),
        url: manifestUrl(digest),
        ...(tag && { tag }),
      });
    }
    case "end-3/7/9 DELETE 202":
    case "ui-manifest DELETE 202": // the web UI's delete button
      return make("delete", tag ? { tag } : { digest: reference });
    case "end-2/10 GET 200":
    case "end-2/10 GET 206": {
      const digest = ctx.params.digest!;
      const range = response.headers.get("content-range");
      if (range !== null && !range.startsWith("bytes 0-")) return [];
      const size = range === null
        ? Number(response.headers.get("content-length"))
        : Number(range.slice(range.lastIndexOf("/") + 1));
      return make("pull", { mediaType: BLOB_MEDIA_TYPE, digest, size, url: blobUrl(digest) });
    }
    case "end-2/10 DELETE 202":
      return make("delete", { digest: ctx.params.digest });
    case "end-4a/4b/11 POST 201": {
      const digest = headerDigest!;
      const from = ctx.url.searchParams.get("from");
      // A mount answers without reading the body; a monolithic push reads it.
      const received = bodyBytesRead(request);
      if (ctx.url.searchParams.has("mount") && received === 0) {
        return make("mount", {
          mediaType: BLOB_MEDIA_TYPE,
          digest,
          size: await blobSize(digest),
          url: blobUrl(digest),
          ...(from && { fromRepository: from }),
        });
      }
      return make("push", {
        mediaType: BLOB_MEDIA_TYPE,
        digest,
        size: received,
        url: blobUrl(digest),
      });
    }
    case "end-5/6/13/14 PUT 201": {
      const digest = headerDigest!;
      return make("push", {
        mediaType: BLOB_MEDIA_TYPE,
        digest,
        size: await blobSize(digest),
        url: blobUrl(digest),
      });
    }
  }
  return [];
}

/** `size` with its twin `length`, when known. */
function sized(size: number | undefined): { size?: number; length?: number } {
  return size === undefined || !Number.isFinite(size)
    ? { size: undefined }
    : { size, length: size };
}

/** The route spec ids this module names: a test holds them to the route table. */
export const EVENT_ROUTES = [
  "end-3/7/9",
  "end-2/10",
  "end-4a/4b/11",
  "end-5/6/13/14",
  "ui-manifest",
];
