// Owns the HTTP client of one upstream registry: the token dance, Basic auth, redirects to blob
// storage, manifest Accept lists, and upstream failures as typed UpstreamErrors (issue 13).

import { createLru } from "../cache.ts";
import { log } from "../log.ts";
import { MANIFEST_KINDS } from "../oci/manifest.ts";
import type { Upstream } from "./config.ts";

/*
 * Docker Hub and most public registries answer an unauthenticated request `401` with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client gets a token from the realm
 * (anonymously, or with Basic credentials), caches it per scope until it expires, and retries.
 * A registry that challenges `Basic` gets the credentials on every later request. Blob GETs are
 * often answered 307 to S3 or a CDN: the redirect is followed without our Authorization (a
 * signed URL rejects it, and it would leak our token to another host).
 */

/** Why an upstream could not answer; the proxy store maps each kind to a local status. */
export type UpstreamFailure =
  /** Connection refused, DNS, TLS, timeout. */
  | "unreachable"
  /** 429. */
  | "rate-limited"
  /** 5xx, or an answer that is not a registry's. */
  | "failed"
  /** 401/403 once credentials were offered. */
  | "denied"
  /** Bytes that do not match their digest, or a manifest this registry cannot store. */
  | "invalid";

export class UpstreamError extends Error {
  constructor(
    readonly upstream: string,
    readonly kind: UpstreamFailure,
    message: string,
    readonly retryAfter?: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}

/** Every manifest media type this registry stores, so the upstream never converts to another. */
export const MANIFEST_ACCEPT = Object.keys(MANIFEST_KINDS).join(", ");

export interface UpstreamClient {
  upstream: Upstream;
  /**
   * One request to `/v2/<path>` for repository `remote` (the token's scope), authenticated and
   * with redirects followed. Resolves to any response the upstream gave except 401/403, 429 and
   * 5xx, which reject as UpstreamErrors; network failures too.
   */
  request(remote: string, path: string, init?: UpstreamInit): Promise<Response>;
}

export interface UpstreamInit {
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  /** Aborts the request and its body (a blob fetch's idle timer). */
  signal?: AbortSignal;
}

export interface ClientDeps {
  fetch?: typeof fetch;
  now?: () => number;
  /** For the response's headers (ms); a body has its own idle timer (src/proxy/flights.ts). */
  timeout?: number;
}

const DEFAULT_TIMEOUT = 30_000;
/** Tokens are renewed this long before they expire (clock skew, request time). */
const TOKEN_MARGIN = 10_000;
/** distribution's token spec: a token without `expires_in` lasts 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_REDIRECTS = 5;
const USER_AGENT = "simple-registry (mirror)";

interface Token {
  value: string;
  expires: number;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Repositories whose token is kept; beyond, the least recently used is asked for again. */
const MAX_TOKENS = 10_000;

export function createUpstreamClient(upstream: Upstream, deps: ClientDeps = {}): UpstreamClient {
  const fetchFn = deps.fetch ?? fetch;
  const now = deps.now ?? Date.now;
  const timeout = deps.timeout ?? DEFAULT_TIMEOUT;
  /** Repository name → its pull token. */
  const tokens = createLru<Token>(MAX_TOKENS);
  const pendingTokens = new Map<string, Promise<Token>>();
  /** The token server, once a challenge named it: later repositories get a token up front. */
  let tokenServer: Challenge | undefined;
  /** Set once the upstream challenged Basic: credentials then go with every request. */
  let basic = false;
  const credentials = upstream.username !== undefined
    ? `Basic ${btoa(`${upstream.username}:${upstream.password ?? ""}`)}`
    : undefined;

  const fail = (kind: UpstreamFailure, message: string, retryAfter?: string) =>
    new UpstreamError(upstream.name, kind, `upstream ${upstream.name}: ${message}`, retryAfter);

  /** fetch with our timeout for the headers, network errors as "unreachable". */
  async function send(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const timer = AbortSignal.timeout(timeout);
    const signals = signal ? [timer, signal] : [timer];
    try {
      return await fetchFn(url, { ...init, redirect: "manual", signal: AbortSignal.any(signals) });
    } catch (error) {
      if (signal?.aborted) throw error;
      const reason = timer.aborted ? `no answer within ${timeout} ms` : (error as Error).message;
      throw fail("unreachable", `${new URL(url).host} is unreachable: ${reason}`);
    }
  }

  /** Follows redirects; our Authorization goes only to the upstream's own origin. */
  async function follow(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    let response = await send(url, init, signal);
    for (let hops = 0; isRedirect(response.status); hops++) {
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (!location || hops === MAX_REDIRECTS) throw fail("failed", `bad redirect from ${url}`);
      const next = new URL(location, url);
      const headers = new Headers(init.headers);
      if (next.origin !== upstream.url) headers.delete("authorization");
      url = next.toString();
      response = await send(url, { ...init, headers }, signal);
    }
    return response;
  }

  /** A token for pulling `remote` (one request to the token server per repository and expiry). */
  async function token(server: Challenge, remote: string, fresh: boolean): Promise<Token> {
    const cached = tokens.get(remote);
    if (!fresh && cached && cached.expires > now()) return cached;
    let pending = pendingTokens.get(remote);
    if (!pending) {
      pending = fetchToken(server, remote).finally(() => pendingTokens.delete(remote));
      pendingTokens.set(remote, pending);
    }
    const got = await pending;
    tokens.set(remote, got);
    return got;
  }

  async function fetchToken(server: Challenge, remote: string): Promise<Token> {
    const realm = server.params.realm;
    if (!realm || !/^https?:\/\//.test(realm)) {
      throw fail("failed", "a Bearer challenge without an http(s) realm");
    }
    const url = new URL(realm);
    if (server.params.service !== undefined) url.searchParams.set("service", server.params.service);
    url.searchParams.set("scope", `repository:${remote}:pull`);
    const headers: Record<string, string> = { "user-agent": USER_AGENT };
    if (credentials) headers.authorization = credentials;
    const response = await send(url.toString(), { headers });
    const body = await response.text().catch(() => "");
    if (response.status === 401 || response.status === 403) {
      throw fail("denied", `the token server ${url.host} refused our credentials`);
    }
    if (!response.ok) throw statusFailure(response, `the token server ${url.host}`);
    let value: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      value = JSON.parse(body);
    } catch {
      throw fail("failed", `the token server ${url.host} did not answer JSON`);
    }
    const tokenValue = typeof value.token === "string" ? value.token : value.access_token;
    if (typeof tokenValue !== "string" || tokenValue === "") {
      throw fail("failed", `the token server ${url.host} sent no token`);
    }
    const seconds = typeof value.expires_in === "number" && value.expires_in > 0
      ? value.expires_in
      : DEFAULT_TOKEN_SECONDS;
    log.debug("upstream token", { "proxy.upstream": upstream.name, "proxy.remote": remote });
    return { value: tokenValue, expires: now() + Math.max(0, seconds * 1000 - TOKEN_MARGIN) };
  }

  /** What a first request carries: Basic once asked for, else a token if the server is known. */
  async function firstAuthorization(remote: string): Promise<string | undefined> {
    if (basic) return credentials;
    if (tokenServer) return `Bearer ${(await token(tokenServer, remote, false)).value}`;
    return undefined;
  }

  function statusFailure(response: Response, what = "it"): UpstreamError {
    const status = response.status;
    if (status === 429) {
      return fail(
        "rate-limited",
        `${what} answered 429 (rate limit)`,
        response.headers.get("retry-after") ?? undefined,
      );
    }
    return fail("failed", `${what} answered ${status}`);
  }

  return {
    upstream,
    async request(remote, path, init = {}) {
      const url = `${upstream.url}/v2/${path}`;
      const headers: Record<string, string> = { "user-agent": USER_AGENT, ...init.headers };
      const method = init.method ?? "GET";
      const authorization = await firstAuthorization(remote);
      if (authorization) headers.authorization = authorization;
      let response = await follow(url, { method, headers }, init.signal);
      if (response.status === 401) {
        const challenge = parseChallenge(response.headers.get("www-authenticate") ?? "");
        await response.body?.cancel();
        let retry: string | undefined;
        if (challenge?.scheme === "bearer") {
          tokenServer = challenge;
          retry = `Bearer ${(await token(challenge, remote, true)).value}`;
        } else if (challenge?.scheme === "basic" && credentials) {
          basic = true;
          retry = credentials;
        }
        if (retry === undefined || retry === authorization) {
          throw fail("denied", `refused access to ${remote} (401)`);
        }
        headers.authorization = retry;
        response = await follow(url, { method, headers }, init.signal);
      }
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw fail("denied", `refused access to ${remote} (${response.status})`);
      }
      if (response.status === 429 || response.status >= 500) {
        await response.body?.cancel();
        throw statusFailure(response);
      }
      return response;
    },
  };
}

const isRedirect = (status: number) => [301, 302, 303, 307, 308].includes(status);

/** `Bearer realm="…",service="…",scope="…"` (or `Basic realm="…"`); undefined when unreadable. */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (
    const [, key, quoted, bare] of match[2].matchAll(
      /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g,
    )
  ) {
    params[key.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : bare;
  }
  return { scheme: match[1].toLowerCase(), params };
}
