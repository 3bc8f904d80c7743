// Owns the pull-through cache as a Store: proxied repositories are served from their upstreams and
// what was fetched is kept; every other name goes straight to the local store (issue 13).

/*
 * Only repositories under an upstream's prefix are proxied (src/proxy/routing.ts). For them:
 * - a manifest by digest is immutable: served from the cache, else fetched, checked, kept;
 * - a tag is served from the cache for the upstream's `ttl` after the upstream last confirmed it;
 *   then a HEAD asks again (no body when the digest is unchanged; a HEAD does not count against
 *   Docker Hub's pull limit), and a moved tag is fetched. When the upstream fails, the cached tag
 *   is served (stale-if-error) and logged; an upstream 404 is a 404 here (src/proxy/manifests.ts);
 * - a blob is served from the cache, else streamed from the upstream to the client and into
 *   storage at once, one download however many clients ask (src/proxy/blobs.ts);
 * - tags and referrers are listed by the upstream, by the cache when it fails;
 * - pushes and deletes are refused with 405 UNSUPPORTED.
 */

import { RegistryError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { proxyBlobs } from "./blobs.ts";
import type { Upstream } from "./config.ts";
import { createContext, type ProxyDeps } from "./context.ts";
import { proxyListings } from "./listings.ts";
import { proxyManifests } from "./manifests.ts";
import type { ProxiedName } from "./routing.ts";

export type { ProxyDeps };

export function createProxyStore(
  local: Store,
  upstreams: readonly Upstream[],
  proxied: (name: string) => ProxiedName | undefined,
  deps: ProxyDeps = {},
): Store {
  const ctx = createContext(local, upstreams, proxied, deps);
  const manifests = proxyManifests(ctx);
  const blobs = proxyBlobs(ctx);
  const listings = proxyListings(ctx);

  /** Throws 405 UNSUPPORTED for a proxied repository: its content is the upstream's. */
  const refuse = (name: string) => {
    const route = proxied(name);
    if (!route) return;
    throw new RegistryError(
      "UNSUPPORTED",
      `${name} mirrors upstream ${route.upstream.name}: pushes and deletes are refused`,
      { detail: { name, upstream: route.upstream.name } },
    );
  };
  /** `work` for a local repository; the refusal for a proxied one. */
  const unlessProxied = <T>(name: string, work: () => Promise<T>): Promise<T> =>
    Promise.try(() => {
      refuse(name);
      return work();
    });

  return {
    blobs: {
      size: blobs.size,
      read: blobs.read,
      delete: (name, digest) => unlessProxied(name, () => local.blobs.delete(name, digest)),
    },
    uploads: {
      start: (name) => unlessProxied(name, () => local.uploads.start(name)),
      find: (name, uuid, signed) =>
        unlessProxied(name, () => local.uploads.find(name, uuid, signed)),
      offset: (session) => local.uploads.offset(session),
      append: (session, body) => local.uploads.append(session, body),
      finish: (session, digest, body) => local.uploads.finish(session, digest, body),
      cancel: (session) => local.uploads.cancel(session),
      commit: (name, digest, chunks) =>
        unlessProxied(name, () => local.uploads.commit(name, digest, chunks)),
      ingest: (name, digest, chunks) => {
        if (!proxied(name)) return local.uploads.ingest(name, digest, chunks);
        const refused = unlessProxied(name, () => Promise.resolve());
        return { verified: refused, committed: refused };
      },
      mount: (name, digest, from) =>
        unlessProxied(name, () => local.uploads.mount(name, digest, from)),
    },
    manifests: {
      get: manifests.get,
      put: (name, reference, body, type) =>
        unlessProxied(name, () => local.manifests.put(name, reference, body, type)),
      delete: (name, reference) =>
        unlessProxied(name, () => local.manifests.delete(name, reference)),
      adopt: (name, reference, body, type) => local.manifests.adopt(name, reference, body, type),
    },
    tags: listings.tags,
    referrers: listings.referrers,
    catalog: (page, visible) => local.catalog(page, visible),
    catalogWithTags: (page, visible) => local.catalogWithTags(page, visible),
    quotas: () => local.quotas(),
    // What the cache holds (the web UI browses it as it is, asking no upstream).
    describe: local.describe,
    state: local.state,
  };
}
