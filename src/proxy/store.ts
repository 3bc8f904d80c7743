// Owns the pull-through cache: a Store that serves proxied repositories from their upstreams and
// keeps what it fetched, wrapping the local store (manifests with ttl, blobs in flight; issue 13).

/*
 * Only repositories under an upstream's prefix are proxied (src/proxy/routing.ts); every other
 * name goes straight to the local store. For a proxied one:
 * - a manifest by digest is immutable: served from the cache, else fetched, checked, kept;
 * - a tag is served from the cache for the upstream's `ttl` after the upstream last confirmed it;
 *   then a HEAD asks again (no body when the digest is unchanged; a HEAD does not count against
 *   Docker Hub's pull limit), and a moved tag is fetched. When the upstream fails, the cached tag
 *   is served (stale-if-error) and logged; an upstream 404 is a 404 here;
 * - a blob is served from the cache, else streamed from the upstream to the client and into
 *   storage at once, one download however many clients ask (src/proxy/flights.ts);
 * - pushes and deletes are refused with 405 UNSUPPORTED.
 */

import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import { log } from "../log.ts";
import { type Descriptor, MAX_MANIFEST_BYTES } from "../oci/manifest.ts";
import { createLru } from "../cache.ts";
import { digestOf } from "../digest.ts";
import { pageOf } from "../store/page.ts";
import { recordPull } from "../store/pulls.ts";
import type { PageOf, Reference, Store, StoredManifest } from "../store/store.ts";
import {
  type ClientDeps,
  createUpstreamClient,
  MANIFEST_ACCEPT,
  type UpstreamClient,
  UpstreamError,
} from "./client.ts";
import type { Upstream } from "./config.ts";
import { type Flight, startFlight } from "./flights.ts";
import type { ProxiedName } from "./routing.ts";

export interface ProxyDeps extends ClientDeps {
  /** A body that sends nothing this long is given up (ms; src/proxy/flights.ts). */
  idleTimeout?: number;
}

/** Tags whose last confirmation is remembered; a forgotten one is asked about again. */
const MAX_VALIDATED = 100_000;
/** Seconds a client is asked to wait when the upstream cannot be reached. */
const RETRY_AFTER_SECONDS = "5";

type Result = "hit" | "miss" | "revalidated" | "stale";

export function createProxyStore(
  local: Store,
  upstreams: readonly Upstream[],
  proxied: (name: string) => ProxiedName | undefined,
  deps: ProxyDeps = {},
): Store {
  const now = deps.now ?? Date.now;
  const clients = new Map(upstreams.map((u) => [u.name, createUpstreamClient(u, deps)]));
  const client = (route: ProxiedName): UpstreamClient => clients.get(route.upstream.name)!;
  /** `name:tag` → when the upstream last confirmed (or we last fetched) the tag. */
  const validated = createLru<number>(MAX_VALIDATED);
  /** Work on one key shared by concurrent callers: a tag's refresh, a blob's HEAD. */
  const shared = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, work: () => Promise<T>): Promise<T> => {
    let pending = shared.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = work().finally(() => shared.delete(key));
      shared.set(key, pending);
    }
    return pending;
  };
  const flights = new Map<string, Promise<Flight>>();

  const report = (
    route: ProxiedName,
    name: string,
    reference: string,
    result: Result,
    upstreamMs?: number,
    error?: unknown,
  ) => {
    const fields: Record<string, unknown> = {
      "proxy.upstream": route.upstream.name,
      "proxy.result": result,
      "proxy.repository": name,
      "proxy.reference": reference,
    };
    if (upstreamMs !== undefined) fields["proxy.upstream_ms"] = Math.round(upstreamMs * 100) / 100;
    if (error) fields["error.message"] = (error as Error).message;
    if (result === "stale") log.warn("proxy served stale", fields);
    else log.info("proxy", fields);
  };

  // ------------------------------------------------------------------------------- manifests

  async function getManifest(name: string, reference: Reference) {
    const route = proxied(name);
    if (!route) return local.manifests.get(name, reference);
    const cached = await local.manifests.get(name, reference);
    if ("digest" in reference) {
      if (cached) {
        report(route, name, reference.digest.value, "hit");
        return cached;
      }
      const digest = reference.digest;
      return once(`${name}@${digest.value}`, () => fetchByDigest(route, name, digest));
    }
    const key = `${name}:${reference.tag}`;
    const confirmed = validated.get(key);
    if (cached && confirmed !== undefined && now() - confirmed < route.upstream.ttl) {
      report(route, name, reference.tag, "hit");
      return cached;
    }
    return once(key, () => refreshTag(route, name, reference.tag, cached));
  }

  async function fetchByDigest(route: ProxiedName, name: string, digest: Digest) {
    const started = performance.now();
    try {
      const fetched = await fetchManifest(route, digest.value, "GET");
      if (!fetched) return undefined;
      const stored = await adopt(route, name, { digest }, fetched);
      report(route, name, digest.value, "miss", performance.now() - started);
      return stored;
    } catch (error) {
      throw localError(error);
    }
  }

  async function refreshTag(
    route: ProxiedName,
    name: string,
    tag: string,
    cached: StoredManifest | undefined,
  ): Promise<StoredManifest | undefined> {
    const key = `${name}:${tag}`;
    const started = performance.now();
    try {
      if (cached) {
        const head = await fetchManifest(route, tag, "HEAD");
        if (head?.digest === cached.digest.value) {
          validated.set(key, now());
          report(route, name, tag, "revalidated", performance.now() - started);
          return cached;
        }
        if (!head) return forget(key);
      }
      const fetched = await fetchManifest(route, tag, "GET");
      if (!fetched) return forget(key);
      const stored = await adopt(route, name, { tag }, fetched);
      validated.set(key, now());
      report(route, name, tag, "miss", performance.now() - started);
      return stored;
    } catch (error) {
      if (!(error instanceof UpstreamError) || !cached) throw localError(error);
      // Served as cached until the ttl passes again, so an outage costs one try per ttl.
      validated.set(key, now());
      report(route, name, tag, "stale", performance.now() - started, error);
      return cached;
    }
  }

  const forget = (key: string) => {
    validated.delete(key);
    return undefined;
  };

  interface Fetched {
    bytes?: Uint8Array<ArrayBuffer>;
    contentType: string | null;
    /** The digest the upstream names (HEAD), or of the bytes (GET). */
    digest?: string;
  }

  /** A manifest's digest (HEAD) or checked bytes (GET); undefined when the upstream has none. */
  async function fetchManifest(
    route: ProxiedName,
    reference: string,
    method: "GET" | "HEAD",
  ): Promise<Fetched | undefined> {
    const { remote } = route;
    const response = await client(route).request(remote, `${remote}/manifests/${reference}`, {
      method,
      headers: { accept: MANIFEST_ACCEPT },
    });
    const upstreamFail = (message: string) =>
      new UpstreamError(
        route.upstream.name,
        "failed",
        `upstream ${route.upstream.name}: ${message}`,
      );
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw upstreamFail(`answered ${response.status} for ${remote}:${reference}`);
    }
    const named = response.headers.get("docker-content-digest") ?? undefined;
    const contentType = response.headers.get("content-type");
    if (method === "HEAD") {
      await response.body?.cancel();
      return { contentType, digest: named };
    }
    const bytes = await readCapped(response, MAX_MANIFEST_BYTES);
    if (!bytes) throw upstreamFail(`sent a manifest over ${MAX_MANIFEST_BYTES} bytes`);
    // By digest the bytes must hash to it; by tag, to the digest the upstream names (if any).
    const expected = parseDigest(reference) ?? (named ? parseDigest(named) : undefined);
    const actual = digestOf(bytes, expected?.algorithm ?? "sha256");
    if (expected && actual !== expected.value) {
      throw new UpstreamError(
        route.upstream.name,
        "invalid",
        `upstream ${route.upstream.name} sent a manifest that does not match ${expected.value}`,
      );
    }
    return { bytes, contentType, digest: actual };
  }

  async function adopt(route: ProxiedName, name: string, reference: Reference, fetched: Fetched) {
    try {
      const stored = await local.manifests.adopt(
        name,
        reference,
        fetched.bytes!,
        fetched.contentType,
      );
      recordPull(local.state, name, stored.digest, "tag" in reference ? reference.tag : undefined);
      return stored;
    } catch (error) {
      if (error instanceof RegistryError && error.code === "MANIFEST_INVALID") {
        throw new UpstreamError(
          route.upstream.name,
          "invalid",
          `upstream ${route.upstream.name} sent a manifest this registry cannot store: ${error.message}`,
        );
      }
      throw error;
    }
  }

  // ------------------------------------------------------------------------------- blobs

  async function blobSize(name: string, digest: Digest): Promise<number | undefined> {
    const route = proxied(name);
    const size = await local.blobs.size(name, digest);
    if (!route || size !== undefined) return size;
    const flight = await flights.get(`${name}@${digest.value}`)?.catch(() => undefined);
    if (flight?.size !== undefined) return flight.size;
    return once(`size:${name}@${digest.value}`, () => headBlob(route, name, digest));
  }

  /** The upstream's size of a blob; a blob stored here already is linked, not downloaded. */
  async function headBlob(route: ProxiedName, name: string, digest: Digest) {
    const { remote } = route;
    const started = performance.now();
    try {
      const response = await client(route).request(remote, `${remote}/blobs/${digest.value}`, {
        method: "HEAD",
      });
      await response.body?.cancel();
      if (response.status === 404) return undefined;
      const length = Number(response.headers.get("content-length") ?? NaN);
      if (response.status !== 200 || !Number.isSafeInteger(length)) {
        throw new UpstreamError(
          route.upstream.name,
          "failed",
          `upstream ${route.upstream.name} answered ${response.status} for blob ${digest.value}`,
        );
      }
      // The upstream vouches that this repository has the blob: bytes another repository
      // brought are linked here instead of fetched again.
      const linked = await local.uploads.mount(name, digest.value, null);
      report(route, name, digest.value, linked ? "hit" : "miss", performance.now() - started);
      return linked ? await local.blobs.size(name, digest) ?? length : length;
    } catch (error) {
      throw localError(error);
    }
  }

  async function readBlob(name: string, digest: Digest, range?: { start: number; end: number }) {
    const route = proxied(name);
    if (!route || await local.blobs.size(name, digest) !== undefined) {
      if (route) report(route, name, digest.value, "hit");
      return local.blobs.read(name, digest, range);
    }
    const started = performance.now();
    const flight = await joinFlight(route, name, digest);
    if (!range) {
      const live = flight.join();
      if (live) {
        report(route, name, digest.value, "miss", performance.now() - started);
        return endsEarlyOnError(live);
      }
    }
    try {
      await flight.done;
    } catch (error) {
      throw localError(error, route);
    }
    report(route, name, digest.value, "miss", performance.now() - started);
    return local.blobs.read(name, digest, range);
  }

  /** The download of a blob under way, or a new one; BLOB_UNKNOWN when the upstream has none. */
  function joinFlight(route: ProxiedName, name: string, digest: Digest): Promise<Flight> {
    const key = `${name}@${digest.value}`;
    let flight = flights.get(key);
    if (!flight) {
      flight = startDownload(route, name, digest);
      flights.set(key, flight);
      flight.then((f) => f.done).catch(() => {}).finally(() => flights.delete(key));
    }
    return flight;
  }

  async function startDownload(route: ProxiedName, name: string, digest: Digest) {
    const { remote } = route;
    const abort = new AbortController();
    const started = performance.now();
    let response: Response;
    try {
      response = await client(route).request(remote, `${remote}/blobs/${digest.value}`, {
        signal: abort.signal,
      });
    } catch (error) {
      throw localError(error);
    }
    if (response.status === 404 || response.status !== 200 || !response.body) {
      await response.body?.cancel();
      if (response.status === 404) {
        throw new RegistryError(
          "BLOB_UNKNOWN",
          `upstream ${route.upstream.name} has no such blob`,
          {
            detail: { digest: digest.value },
          },
        );
      }
      throw localError(
        new UpstreamError(
          route.upstream.name,
          "failed",
          `upstream ${route.upstream.name} answered ${response.status} for blob ${digest.value}`,
        ),
      );
    }
    const length = Number(response.headers.get("content-length") ?? NaN);
    const flight = startFlight({
      body: response.body,
      size: Number.isSafeInteger(length) ? length : undefined,
      abort: (reason) => abort.abort(reason),
    }, {
      commit: (chunks) => local.uploads.commit(name, digest, chunks),
      readStored: async (offset) => {
        if (offset === 0) return local.blobs.read(name, digest);
        const end = await local.blobs.size(name, digest);
        return local.blobs.read(name, digest, { start: offset, end: end ?? offset });
      },
      idleTimeout: deps.idleTimeout,
    });
    flight.done.then(() => {
      log.info("proxy fetched", {
        "proxy.upstream": route.upstream.name,
        "proxy.repository": name,
        "proxy.reference": digest.value,
        "proxy.bytes": flight.size,
        "duration_ms": Math.round(performance.now() - started),
      });
    }, (error) => {
      log.error("proxy fetch failed", {
        "proxy.upstream": route.upstream.name,
        "proxy.repository": name,
        "proxy.reference": digest.value,
        "error.message": describeFailure(error, route),
      });
    });
    return flight;
  }

  // ------------------------------------------------------------------------------- listings

  async function listTags(name: string, page: { n: number; last?: string }) {
    const route = proxied(name);
    if (!route) return local.tags(name, page);
    const { remote } = route;
    const started = performance.now();
    try {
      if (page.n === 0) return { items: [] };
      const query = new URLSearchParams({ n: String(page.n) });
      if (page.last !== undefined) query.set("last", page.last);
      const response = await client(route).request(remote, `${remote}/tags/list?${query}`);
      if (response.status === 404) {
        await response.body?.cancel();
        throw new RegistryError(
          "NAME_UNKNOWN",
          `upstream ${route.upstream.name} has no ${remote}`,
          {
            detail: { name },
          },
        );
      }
      const body = response.status === 200
        ? await readCapped(response, 16 * 1024 * 1024)
        : undefined;
      const tags = body && parseJson<{ tags?: unknown }>(body)?.tags;
      if (!(tags === null || (Array.isArray(tags) && tags.every((t) => typeof t === "string")))) {
        await response.body?.cancel().catch(() => {});
        throw new UpstreamError(
          route.upstream.name,
          "failed",
          `upstream ${route.upstream.name}: bad tag list`,
        );
      }
      report(route, name, "tags", "miss", performance.now() - started);
      const next = nextLast(response.headers.get("link"));
      return { items: (tags ?? []) as string[], ...(next !== undefined && { next }) };
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      const cached = await local.tags(name, page).catch(() => undefined);
      if (!cached) throw localError(error);
      report(route, name, "tags", "stale", performance.now() - started, error);
      return cached;
    }
  }

  async function listReferrers(
    name: string,
    subject: Digest,
    query: { n: number; last?: string; artifactType?: string },
  ): Promise<PageOf<Descriptor>> {
    const route = proxied(name);
    if (!route) return local.referrers(name, subject, query);
    const { remote } = route;
    const started = performance.now();
    try {
      const filter = query.artifactType === undefined
        ? ""
        : `?${new URLSearchParams({ artifactType: query.artifactType })}`;
      const response = await client(route).request(
        remote,
        `${remote}/referrers/${subject.value}${filter}`,
        { headers: { accept: "application/vnd.oci.image.index.v1+json" } },
      );
      const body = response.status === 200
        ? await readCapped(response, MAX_MANIFEST_BYTES)
        : undefined;
      await response.body?.cancel().catch(() => {});
      const manifests = body && parseJson<{ manifests?: unknown }>(body)?.manifests;
      // No referrers API upstream (404, distribution 2.8): what the cache holds is the answer.
      if (!Array.isArray(manifests)) return await local.referrers(name, subject, query);
      const items = (manifests as Descriptor[]).filter((d) =>
        typeof d?.digest === "string" &&
        (query.artifactType === undefined || d.artifactType === query.artifactType)
      ).sort((a, b) => a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
      report(route, name, `referrers ${subject.value}`, "miss", performance.now() - started);
      return pageOf(items, (d) => d.digest.replace(":", "-"), query);
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      report(
        route,
        name,
        `referrers ${subject.value}`,
        "stale",
        performance.now() - started,
        error,
      );
      return local.referrers(name, subject, query);
    }
  }

  // ------------------------------------------------------------------------------- refusals

  const refuse = (name: string) => {
    const route = proxied(name);
    if (!route) return;
    throw new RegistryError(
      "UNSUPPORTED",
      `${name} mirrors upstream ${route.upstream.name}: pushes and deletes are refused`,
      { detail: { name, upstream: route.upstream.name } },
    );
  };

  return {
    blobs: {
      size: blobSize,
      read: readBlob,
      delete: (name, digest) => (refuse(name), local.blobs.delete(name, digest)),
    },
    uploads: {
      start: (name) => (refuse(name), local.uploads.start(name)),
      find: (name, uuid, signed) => (refuse(name), local.uploads.find(name, uuid, signed)),
      offset: (session) => local.uploads.offset(session),
      append: (session, body) => local.uploads.append(session, body),
      finish: (session, digest, body) => local.uploads.finish(session, digest, body),
      cancel: (session) => local.uploads.cancel(session),
      commit: (name, digest, chunks) => (refuse(name), local.uploads.commit(name, digest, chunks)),
      mount: (name, digest, from) => (refuse(name), local.uploads.mount(name, digest, from)),
    },
    manifests: {
      get: getManifest,
      put: (
        name,
        reference,
        body,
        type,
      ) => (refuse(name), local.manifests.put(name, reference, body, type)),
      delete: (name, reference) => (refuse(name), local.manifests.delete(name, reference)),
      adopt: (name, reference, body, type) => local.manifests.adopt(name, reference, body, type),
    },
    tags: listTags,
    referrers: listReferrers,
    catalog: (page, visible) => local.catalog(page, visible),
    catalogWithTags: (page, visible) => local.catalogWithTags(page, visible),
    quotas: () => local.quotas(),
    // What the cache holds (the web UI browses it as it is, asking no upstream).
    describe: local.describe,
    state: local.state,
  };
}

/** An upstream failure as the client sees it (other errors pass through as they are). */
function localError(error: unknown, route?: ProxiedName): unknown {
  if (error instanceof RegistryError && route) {
    // A flight that failed: the commit's own words are about an upload, not about the upstream.
    if (error.code === "DIGEST_INVALID" || error.code === "BLOB_UPLOAD_INVALID") {
      return new RegistryError("UNAVAILABLE", describeFailure(error, route), { status: 502 });
    }
    return error;
  }
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

/** Why a blob download failed, in the upstream's terms. */
function describeFailure(error: unknown, route: ProxiedName): string {
  const upstream = `upstream ${route.upstream.name}`;
  if (error instanceof RegistryError && error.code === "DIGEST_INVALID") {
    return `${upstream} sent bytes that do not match the blob's digest; nothing was stored`;
  }
  if (error instanceof RegistryError && error.code === "BLOB_UPLOAD_INVALID") {
    const reason = (error.detail as { reason?: string } | undefined)?.reason ?? "";
    return `${upstream} broke off the blob: ${reason}`;
  }
  return (error as Error).message;
}

/**
 * The stream, ended early instead of errored when the download fails: the response's
 * Content-Length tells the client its body broke off, the failure is logged once ("proxy fetch
 * failed"), and Deno.serve does not print the error to stderr beside the JSON logs.
 */
function endsEarlyOnError(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch {
        controller.close();
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** A small body read whole, or undefined past `limit` bytes. */
async function readCapped(
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
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function parseJson<T>(bytes: Uint8Array): T | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The `last` of a `Link: <…?last=x&n=…>; rel="next"` header, if any. */
function nextLast(link: string | null): string | undefined {
  const target = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  if (!target) return undefined;
  return new URL(target, "http://upstream").searchParams.get("last") ?? undefined;
}
