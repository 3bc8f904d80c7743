// Helpers of the mirror tests: an upstream Simple Registry (open or with token auth) in-process, a
// mirror in front of it whose upstream requests are counted, and image pulls through it.

import { createHash } from "node:crypto";
import { parseProxyFlag, type Upstream } from "../../src/proxy/config.ts";
import type { ProxyDeps } from "../../src/proxy/store.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import {
  assertEquals,
  type BuiltImage,
  digest,
  OCI_MANIFEST,
  type RegistryClient,
  registryClient,
} from "../helpers.ts";

export interface Sent {
  method: string;
  url: URL;
}

/** A fetch that records every request the mirror sends upstream. */
export function countingFetch(inner: typeof fetch = fetch) {
  const sent: Sent[] = [];
  const counted = ((input: string | URL | Request, init?: RequestInit) => {
    sent.push({ method: init?.method ?? "GET", url: new URL(String(input)) });
    return inner(input, init);
  }) as typeof fetch;
  return {
    sent,
    fetch: counted,
    /** Requests to a path (of one method) since `from`. */
    count(method: string, path: string | RegExp, from = 0): number {
      return sent.slice(from).filter((r) =>
        r.method === method &&
        (typeof path === "string" ? r.url.pathname === path : path.test(r.url.pathname))
      ).length;
    },
  };
}

export interface Mirror extends AsyncDisposable {
  url: string;
  server: RunningServer;
  client: RegistryClient;
  driver: StorageDriver;
}

export async function startMirror(
  upstreams: Upstream[],
  deps: ProxyDeps = {},
  options: { driver?: StorageDriver; maxAge?: number; maxBytes?: number } = {},
): Promise<Mirror> {
  const driver = options.driver ?? createMemoryDriver();
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver,
    mirror: { upstreams, maxAge: options.maxAge, maxBytes: options.maxBytes, ...deps },
  });
  return {
    url: server.url,
    server,
    client: registryClient(server.url),
    driver,
    [Symbol.asyncDispose]: () => server.shutdown(2000),
  };
}

/** An upstream entry for a registry at `url`, under `prefix` (name = prefix). */
export function upstreamAt(prefix: string, url: string, extra: Partial<Upstream> = {}): Upstream {
  return { ...parseProxyFlag(`${prefix}=${url}`), ...extra };
}

/** Pulls a manifest (by tag or digest) and its blobs through a client; checks every byte. */
export async function pullThrough(
  client: RegistryClient,
  name: string,
  reference: string,
  image: BuiltImage,
  query = "",
): Promise<void> {
  const res = await client.get(`/v2/${name}/manifests/${reference}${query}`, {
    accept: OCI_MANIFEST,
  });
  assertEquals(res.status, 200, `manifest ${name}:${reference}: ${res.text}`);
  assertEquals(res.body, image.manifest, `bytes of ${name}:${reference}`);
  assertEquals(res.headers.get("docker-content-digest"), image.digest);
  for (const blob of [image.config, ...image.layers]) {
    const got = await client.get(`/v2/${name}/blobs/${digest(blob)}${query}`);
    assertEquals(got.status, 200, `blob ${digest(blob)}: ${got.text.slice(0, 300)}`);
    assertEquals(digest(got.body), digest(blob), `bytes of blob ${digest(blob)}`);
  }
}

/** GETs a URL and hashes the body as it streams (big blobs: no text decoding of megabytes). */
export async function fetchDigest(url: string): Promise<{ status: number; digest: string }> {
  const response = await fetch(url);
  const hash = createHash("sha256");
  for await (const chunk of response.body ?? []) hash.update(chunk);
  return { status: response.status, digest: `sha256:${hash.digest("hex")}` };
}
