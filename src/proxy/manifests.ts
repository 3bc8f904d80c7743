// Owns proxied manifests: by digest fetched once and kept, by tag served for the upstream's ttl,
// then revalidated with a HEAD; a stale tag when the upstream fails (stale-if-error; issue 13).

import { createLru } from "../cache.ts";
import { digestOf } from "../digest.ts";
import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import { MAX_MANIFEST_BYTES } from "../oci/manifest.ts";
import { recordPull } from "../store/pulls.ts";
import type { Reference, StoredManifest } from "../store/store.ts";
import { MANIFEST_ACCEPT, UpstreamError } from "./client.ts";
import { localError, type ProxyContext, readCapped, upstreamFailed } from "./context.ts";
import type { ProxiedName } from "./routing.ts";

/** Tags whose last confirmation is remembered; a forgotten one is asked about again. */
const MAX_VALIDATED = 100_000;

interface Fetched {
  bytes?: Uint8Array<ArrayBuffer>;
  contentType: string | null;
  /** The digest the upstream names (HEAD), or of the bytes (GET). */
  digest?: string;
}

export function proxyManifests(ctx: ProxyContext) {
  const { local } = ctx;
  /** `name:tag` → when the upstream last confirmed it (or it was fetched, or served stale). */
  const validated = createLru<number>(MAX_VALIDATED);

  async function get(name: string, reference: Reference): Promise<StoredManifest | undefined> {
    const route = ctx.proxied(name);
    if (!route) return local.manifests.get(name, reference);
    const cached = await local.manifests.get(name, reference);
    if ("digest" in reference) {
      if (cached) {
        ctx.report(route, name, reference.digest.value, "hit");
        return cached;
      }
      const digest = reference.digest;
      return ctx.once(`${name}@${digest.value}`, () => fetchByDigest(route, name, digest));
    }
    const key = `${name}:${reference.tag}`;
    const confirmed = validated.get(key);
    if (cached && confirmed !== undefined && ctx.now() - confirmed < route.upstream.ttl) {
      ctx.report(route, name, reference.tag, "hit");
      return cached;
    }
    return ctx.once(key, () => refreshTag(route, name, reference.tag, cached));
  }

  async function fetchByDigest(route: ProxiedName, name: string, digest: Digest) {
    const started = performance.now();
    try {
      const fetched = await fetchManifest(route, digest.value, "GET");
      if (!fetched) return undefined;
      const stored = await adopt(route, name, { digest }, fetched);
      ctx.report(route, name, digest.value, "miss", performance.now() - started);
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
          validated.set(key, ctx.now());
          ctx.report(route, name, tag, "revalidated", performance.now() - started);
          return cached;
        }
        if (!head) return forget(key);
      }
      const fetched = await fetchManifest(route, tag, "GET");
      if (!fetched) return forget(key);
      const stored = await adopt(route, name, { tag }, fetched);
      validated.set(key, ctx.now());
      ctx.report(route, name, tag, "miss", performance.now() - started);
      return stored;
    } catch (error) {
      if (!(error instanceof UpstreamError) || !cached) throw localError(error);
      // Served as cached until the ttl passes again, so an outage costs one try per ttl.
      validated.set(key, ctx.now());
      ctx.report(route, name, tag, "stale", performance.now() - started, error);
      return cached;
    }
  }

  /** The upstream has no such tag (404): nothing is served, and the tag is asked about again. */
  const forget = (key: string) => {
    validated.delete(key);
    return undefined;
  };

  /** A manifest's digest (HEAD) or checked bytes (GET); undefined when the upstream has none. */
  async function fetchManifest(
    route: ProxiedName,
    reference: string,
    method: "GET" | "HEAD",
  ): Promise<Fetched | undefined> {
    const { remote } = route;
    const response = await ctx.client(route).request(remote, `${remote}/manifests/${reference}`, {
      method,
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      if (response.status === 404) return undefined;
      throw upstreamFailed(route, `answered ${response.status} for ${remote}:${reference}`);
    }
    const named = response.headers.get("docker-content-digest") ?? undefined;
    const contentType = response.headers.get("content-type");
    if (method === "HEAD") {
      await response.body?.cancel();
      return { contentType, digest: named };
    }
    const bytes = await readCapped(response, MAX_MANIFEST_BYTES);
    if (!bytes) throw upstreamFailed(route, `sent a manifest over ${MAX_MANIFEST_BYTES} bytes`);
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

  /** Keeps a fetched manifest (and its tag) and records the pull it answers. */
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

  return { get };
}
