// Owns the assembly of a mirror: the proxy store around the local one, the name routing the app
// applies before auth, and the cache limits the GC enforces (issue 13).

import type { CacheLimits } from "../maintenance/cache.ts";
import type { Store } from "../store/store.ts";
import { repositoryExists } from "../store/tags.ts";
import type { Upstream } from "./config.ts";
import { createRouting, type ResolveName } from "./routing.ts";
import { createProxyStore, type ProxyDeps } from "./store.ts";

export interface MirrorSettings {
  upstreams: Upstream[];
  /** Cached manifests not pulled for this long (ms) are dropped by the GC. */
  maxAge?: number;
  /** Bytes the cache may hold; the GC drops the least recently pulled beyond. */
  maxBytes?: number;
}

export interface Mirror {
  store: Store;
  resolveName: ResolveName;
  /** For the GC: which repositories are cache, and its limits. */
  cache: CacheLimits;
}

export function createMirror(local: Store, settings: MirrorSettings, deps: ProxyDeps = {}): Mirror {
  const routing = createRouting(settings.upstreams, (name) => repositoryExists(local.state, name));
  return {
    store: createProxyStore(local, settings.upstreams, routing.proxied, deps),
    resolveName: routing.resolve,
    cache: cacheLimits(settings, routing),
  };
}

/** What the GC needs of a mirror: which repositories are cache, and the cache's limits. */
export function cacheLimits(
  settings: MirrorSettings,
  routing = createRouting(settings.upstreams, () => Promise.resolve(false)),
): CacheLimits {
  return {
    isCached: (name) => routing.proxied(name) !== undefined,
    maxAge: settings.maxAge,
    maxBytes: settings.maxBytes,
  };
}
