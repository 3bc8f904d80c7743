// Owns request dispatch: route lookup, 404/405, HEAD via GET, common headers, error rendering, taps.
// Implements the spec's error body and Docker's `Docker-Distribution-API-Version` on every response.

import { createByteBudget } from "./budget.ts";
import { errorResponse, RegistryError } from "./errors.ts";
import { type Cidr, type Client, resolveClient } from "./forwarded.ts";
import type { Exchange, Tap } from "./exchange.ts";
import type { Context, Ops } from "./http.ts";
import { log } from "./log.ts";
import type { Store } from "./store/store.ts";
import { allowedMethods, type Match, matchRoute } from "./routes.ts";
import type { Authorizer } from "./auth/types.ts";
import { authorizeUi } from "./ui/session.ts";
import { setUiHeaders, type Ui } from "./ui/state.ts";
import { accessLog } from "./ops/access_log.ts";
import type { ResolveName } from "./proxy/routing.ts";

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
  /** What sees every request (src/ops): default the access log alone. */
  taps?: Tap[];
  /** Health and metrics for their routes (src/ops/endpoints.ts). */
  ops?: Ops;
  /** Maps a request's repository name to the store's before auth (a mirror: src/proxy/routing.ts). */
  resolveName?: ResolveName;
}

const DEFAULT_BODY_BUDGET = 64 * 1024 * 1024;

export function createApp(store: Store, options: AppOptions = {}): App {
  const budget = createByteBudget(options.bodyBudget ?? DEFAULT_BODY_BUDGET);
  const app = { store, auth: options.auth, budget, ui: options.ui, ops: options.ops };
  const taps = options.taps ?? [accessLog()];
  const receiving = taps.filter((tap) => tap.received);
  const committing = taps.filter((tap) => tap.beforeAnswer);
  const answering = taps.filter((tap) => tap.answered);
  return async (request, info) => {
    const peer = info?.remoteAddr && "hostname" in info.remoteAddr
      ? info.remoteAddr.hostname
      : undefined;
    const client = resolveClient(peer, request.headers, options.trustedProxies ?? []);
    const exchange: Exchange = {
      id: crypto.randomUUID(),
      request,
      path: rawPath(request),
      started: performance.now(),
      client: client.address,
    };
    for (const tap of receiving) tap.received!(exchange);
    let match: Match | undefined;
    let response: Response;
    try {
      exchange.url = requestUrl(request);
      exchange.path = exchange.url.pathname;
      match = matchRoute(exchange.url.pathname, options.ui !== undefined);
      response = await dispatch(exchange, exchange.url, match, app, client, options.resolveName);
    } catch (error) {
      response = renderError(error, exchange);
    }
    try {
      for (const tap of committing) await tap.beforeAnswer!(exchange, response);
    } catch (error) {
      await response.body?.cancel();
      response = renderError(error, exchange);
    }
    if (match?.route.ui) setUiHeaders(response.headers);
    response.headers.set("docker-distribution-api-version", "registry/2.0");
    response.headers.set("x-request-id", exchange.id);
    for (const tap of answering) tap.answered!(exchange, response);
    return response;
  };
}

async function dispatch(
  exchange: Exchange,
  url: URL,
  match: Match | undefined,
  app: Pick<Context, "store" | "auth" | "budget" | "ui" | "ops">,
  client: Client,
  resolveName: ResolveName | undefined,
): Promise<Response> {
  const { request } = exchange;
  if (!match) throw new RegistryError("UNSUPPORTED", "no such endpoint", { status: 404 });
  const head = request.method === "HEAD";
  const method = (head ? "GET" : request.method) as keyof typeof match.route.methods;
  const endpoint = match.route.methods[method];
  exchange.route = { spec: match.route.spec, action: endpoint?.action };
  if (!endpoint) {
    throw new RegistryError("UNSUPPORTED", `${request.method} is not allowed here`, {
      status: 405,
      headers: { allow: allowedMethods(match.route).join(", ") },
    });
  }
  const params = match.params;
  // The registry API's repository names, mapped once for the handlers, the store and auth alike.
  if (resolveName && params.name !== undefined && !match.route.ui) {
    const ns = url.searchParams.get("ns");
    const host = request.headers.get("host");
    params.name = await resolveName({ name: params.name, ns, action: endpoint.action, host });
  }
  const ctx: Context = {
    ...app,
    request,
    url,
    params,
    head,
    remoteAddress: client.address,
    forwarded: client.forwarded,
  };
  exchange.ctx = ctx;
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

function renderError(error: unknown, exchange: Exchange): Response {
  const { id, request, path } = exchange;
  if (error instanceof RegistryError) {
    exchange.errorCode = error.code;
    log.debug("request refused", {
      "http.request.id": id,
      "error.code": error.code,
      "error.message": error.message,
    });
    return errorResponse(error, request.method);
  }
  exchange.errorCode = "UNKNOWN";
  log.error("request failed", { "http.request.id": id, "url.path": path, error });
  return errorResponse(new RegistryError("UNKNOWN", "internal error"), request.method);
}
