// Owns request dispatch: route lookup, 404/405, HEAD via GET, common headers, error rendering, logs.
// Implements the spec's error body and Docker's `Docker-Distribution-API-Version` on every response.

import { createByteBudget } from "./budget.ts";
import { errorResponse, RegistryError } from "./errors.ts";
import { type Cidr, type Client, resolveClient } from "./forwarded.ts";
import type { Context } from "./http.ts";
import { log } from "./log.ts";
import type { Store } from "./store/store.ts";
import { allowedMethods, type Match, matchRoute } from "./routes.ts";
import type { Authorizer } from "./auth/types.ts";
import { authorizeUi } from "./ui/session.ts";
import { setUiHeaders, type Ui } from "./ui/state.ts";

/** `info` is Deno.serve's handler info: its `remoteAddr` feeds the brute-force limits. */
export type App = (request: Request, info?: { remoteAddr?: Deno.Addr }) => Promise<Response>;

export interface AppOptions {
  /** Authentication and access control (src/auth); absent: every request is allowed. */
  auth?: Authorizer;
  /** Bytes of small request bodies (manifests, token forms) held at once (default 64 MiB). */
  bodyBudget?: number;
  /** Peers whose X-Forwarded-* headers are believed (--trusted-proxies). */
  trustedProxies?: Cidr[];
  /** The web UI's state (src/ui/state.ts createUi); absent: no UI routes (--no-ui). */
  ui?: Ui;
}

const DEFAULT_BODY_BUDGET = 64 * 1024 * 1024;

export function createApp(store: Store, options: AppOptions = {}): App {
  const budget = createByteBudget(options.bodyBudget ?? DEFAULT_BODY_BUDGET);
  return async (request, info) => {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    let url: URL | undefined;
    let match: Match | undefined;
    let response: Response;
    try {
      url = requestUrl(request);
      match = matchRoute(url.pathname, options.ui !== undefined);
      const peer = info?.remoteAddr && "hostname" in info.remoteAddr
        ? info.remoteAddr.hostname
        : undefined;
      const client = resolveClient(peer, request.headers, options.trustedProxies ?? []);
      const app = { store, auth: options.auth, budget, ui: options.ui };
      response = await dispatch(request, url, match, app, client);
    } catch (error) {
      response = renderError(error, request, url?.pathname ?? rawPath(request), requestId);
    }
    if (match?.route.ui) setUiHeaders(response.headers);
    response.headers.set("docker-distribution-api-version", "registry/2.0");
    response.headers.set("x-request-id", requestId);
    log.info("request", {
      "http.request.id": requestId,
      "http.request.method": request.method,
      "url.path": url?.pathname ?? rawPath(request),
      "url.query": url?.search.slice(1) ?? "",
      "http.request.body.size": Number(request.headers.get("content-length") ?? 0),
      "http.response.status": response.status,
      "http.response.body.size": Number(response.headers.get("content-length") ?? 0),
      "duration_ms": Math.round((performance.now() - started) * 100) / 100,
    });
    return response;
  };
}

async function dispatch(
  request: Request,
  url: URL,
  match: Match | undefined,
  app: Pick<Context, "store" | "auth" | "budget" | "ui">,
  client: Client,
): Promise<Response> {
  if (!match) throw new RegistryError("UNSUPPORTED", "no such endpoint", { status: 404 });
  const head = request.method === "HEAD";
  const method = (head ? "GET" : request.method) as keyof typeof match.route.methods;
  const endpoint = match.route.methods[method];
  if (!endpoint) {
    throw new RegistryError("UNSUPPORTED", `${request.method} is not allowed here`, {
      status: 405,
      headers: { allow: allowedMethods(match.route).join(", ") },
    });
  }
  const ctx: Context = {
    ...app,
    request,
    url,
    params: match.params,
    head,
    remoteAddress: client.address,
    forwarded: client.forwarded,
  };
  // Every route is checked here, before its handler runs (tests/auth walks ROUTES to prove it).
  if (ctx.auth) {
    ctx.access = match.route.ui
      ? await authorizeUi(ctx, endpoint.action)
      : await ctx.auth.authorize(ctx, endpoint.action);
  }
  const response = await endpoint.handler(ctx);
  if (head && response.body) {
    await response.body.cancel();
    return new Response(null, { status: response.status, headers: response.headers });
  }
  return response;
}

/** The request's URL; a Host header that makes none (`Host: a b`) is the client's error. */
function requestUrl(request: Request): URL {
  try {
    return new URL(request.url);
  } catch {
    throw new RegistryError("UNSUPPORTED", "invalid Host header or request target", {
      status: 400,
    });
  }
}

/** The path as sent, for the logs of a request whose URL does not parse. */
const rawPath = (request: Request) => request.url.replace(/^[^:]*:\/\/[^/]*/, "");

function renderError(error: unknown, request: Request, path: string, requestId: string): Response {
  if (error instanceof RegistryError) {
    log.debug("request refused", {
      "http.request.id": requestId,
      "error.code": error.code,
      "error.message": error.message,
    });
    return errorResponse(error, request.method);
  }
  log.error("request failed", { "http.request.id": requestId, "url.path": path, error });
  return errorResponse(new RegistryError("UNKNOWN", "internal error"), request.method);
}
