// Owns name routing for a mirror: which upstream a repository name belongs to, and the one mapping
// of a request's name (+ containerd's `ns=`, + the default upstream) to the store's name (issue 13).

/*
 * Every proxied repository lives in the store under its upstream's prefix: `dockerhub/library/nginx`
 * whether the client asked `/v2/dockerhub/library/nginx/…` (a path prefix: docker, podman),
 * `/v2/library/nginx/…?ns=docker.io` (containerd's registry host namespace) or `/v2/library/nginx/…`
 * with Docker Hub as the default upstream (docker's `registry-mirrors`). The app maps the name
 * once, before authorizing (src/app.ts), so the handlers, the store and the access policy all see
 * that one name: a rule for `dockerhub/**` covers a mirror however it is reached.
 */

import { RegistryError } from "../errors.ts";
import { isName } from "../grammar.ts";
import type { Upstream } from "./config.ts";

/** A proxied repository: its upstream and its name there. */
export interface ProxiedName {
  upstream: Upstream;
  remote: string;
}

/** What the app asks before it authorizes a request that names a repository. */
export interface NameRequest {
  /** The name in the path, unchecked. */
  name: string;
  /** containerd's `ns` query parameter, if any. */
  ns: string | null;
  /** `pull` for GET/HEAD; a push or delete never falls through to the default upstream. */
  action: string;
  /** The request's Host, so `ns` naming this registry itself means "local". */
  host: string | null;
}

export type ResolveName = (request: NameRequest) => Promise<string>;

export interface Routing {
  /** The upstream a store name belongs to (by prefix), or undefined for a local repository. */
  proxied(name: string): ProxiedName | undefined;
  resolve: ResolveName;
}

/**
 * `localExists(name)`: whether a local repository of that name holds anything (then the default
 * upstream leaves it alone, and a push creates one).
 */
export function createRouting(
  upstreams: readonly Upstream[],
  localExists: (name: string) => Promise<boolean>,
): Routing {
  const byNamespace = new Map(upstreams.flatMap((u) => u.namespaces.map((ns) => [ns, u])));
  // Longest prefix first (checked configs never nest prefixes, but order costs nothing).
  const byPrefix = [...upstreams].sort((a, b) => b.prefix.length - a.prefix.length);
  const fallback = upstreams.find((u) => u.default);

  const storeName = (upstream: Upstream, remote: string) =>
    `${upstream.prefix}/${remoteName(upstream, remote)}`;

  const proxied = (name: string): ProxiedName | undefined => {
    for (const upstream of byPrefix) {
      if (name.startsWith(`${upstream.prefix}/`)) {
        return { upstream, remote: remoteName(upstream, name.slice(upstream.prefix.length + 1)) };
      }
    }
    return undefined;
  };

  return {
    proxied,
    async resolve({ name, ns, action, host }) {
      if (!isName(name)) return name; // the handler answers NAME_INVALID
      if (ns !== null && ns.toLowerCase() !== host?.toLowerCase()) {
        const upstream = byNamespace.get(ns.toLowerCase());
        if (!upstream) {
          throw new RegistryError("NAME_UNKNOWN", `no upstream mirrors the registry ns=${ns}`, {
            detail: { name, ns },
          });
        }
        return storeName(upstream, name);
      }
      const owner = proxied(name);
      if (owner) return storeName(owner.upstream, owner.remote);
      if (fallback && action === "pull" && !await localExists(name)) {
        return storeName(fallback, name);
      }
      return name;
    },
  };
}

/** The name on the upstream: on Docker Hub an unqualified `nginx` is `library/nginx`. */
export function remoteName(upstream: Upstream, name: string): string {
  return upstream.dockerHub && !name.includes("/") ? `library/${name}` : name;
}
