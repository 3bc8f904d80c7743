// Owns the operations routes: GET /healthz, GET /readyz, GET /metrics, and the metrics listener's app.
// Implements the probes' contract (200 or 503 with the reason in JSON) and Prometheus' scrape.

import { errorResponse, RegistryError } from "../errors.ts";
import { type Context, json, type Ops } from "../http.ts";

const noSuchEndpoint = () => new RegistryError("UNSUPPORTED", "no such endpoint", { status: 404 });

/** The process serves requests: always 200 while it answers at all. */
export function liveness(ctx: Context): Promise<Response> {
  if (!ctx.ops) throw noSuchEndpoint();
  return Promise.resolve(json({ status: "ok" }));
}

/** Storage answered the last probe and the server is not draining: 200, else 503 and why. */
export function readiness(ctx: Context): Promise<Response> {
  if (!ctx.ops) throw noSuchEndpoint();
  return Promise.resolve(readinessResponse(ctx.ops));
}

/** The scrape, on the main port unless --metrics-addr moved it (then 404 here). */
export async function metricsEndpoint(ctx: Context): Promise<Response> {
  if (!ctx.ops?.metrics) throw noSuchEndpoint();
  return await scrape(ctx.ops);
}

function readinessResponse(ops: Ops): Response {
  const verdict = ops.health.readiness();
  return verdict.ready
    ? json({ status: "ready" })
    : json({ status: "unavailable", reason: verdict.reason }, { status: 503 });
}

async function scrape(ops: Ops): Promise<Response> {
  const { body, contentType } = await ops.metrics!.render();
  const bytes = new TextEncoder().encode(body);
  return new Response(bytes, {
    headers: { "content-type": contentType, "content-length": String(bytes.length) },
  });
}

/**
 * The app of the --metrics-addr listener: /metrics, /healthz and /readyz, no auth (bind it to an
 * address only the monitoring reaches), nothing else.
 */
export function opsApp(ops: Ops): (request: Request) => Promise<Response> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    const head = request.method === "HEAD";
    if (request.method !== "GET" && !head) {
      return errorResponse(
        new RegistryError("UNSUPPORTED", `${request.method} is not allowed here`, {
          status: 405,
          headers: { allow: "GET, HEAD" },
        }),
        request.method,
      );
    }
    let response: Response;
    if (pathname === "/metrics") response = await scrape(ops);
    else if (pathname === "/healthz") response = json({ status: "ok" });
    else if (pathname === "/readyz") response = readinessResponse(ops);
    else return errorResponse(noSuchEndpoint(), request.method);
    return head
      ? new Response(null, { status: response.status, headers: response.headers })
      : response;
  };
}
