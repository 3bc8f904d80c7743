// Owns what the app tells the features that watch requests: the exchange and the tap's hooks.
// No spec section: the seam metrics, events, access and audit logs and tracing hook into (src/ops).

import type { Action } from "./auth/types.ts";
import type { Context } from "./http.ts";

/** One request as the app saw it: what access logs, metrics, audit logs and events read. */
export interface Exchange {
  /** Its `X-Request-Id`. */
  id: string;
  request: Request;
  /** Its URL; absent when its Host or target makes none (answered 400). */
  url?: URL;
  /** The path as sent (the URL's, once it parses). */
  path: string;
  /** performance.now() at its arrival. */
  started: number;
  /** The client's address: the peer, or behind --trusted-proxies the X-Forwarded-For hop. */
  client?: string;
  /** The route that matched: its `spec` id (a bounded label, never the raw path) and the action
   * this request's method asks for (absent for a method the route does not allow). */
  route?: { spec: string; action?: Action };
  /** The handler's context once a route matched: params, and `access` (the user) once authorized. */
  ctx?: Context;
  /** The code of an error answer. */
  errorCode?: string;
  /** W3C trace context, when tracing is on (src/ops/trace.ts). */
  trace?: { traceId: string; spanId: string; parentId?: string; flags: string };
}

/**
 * A feature that watches requests wraps the app here, never in its handlers: `received` as one
 * arrives, `beforeAnswer` once its answer is decided and before it is sent (awaited; throwing
 * turns the answer into that error: events stored durably first), `answered` as it is sent.
 */
export interface Tap {
  received?(exchange: Exchange): void;
  beforeAnswer?(exchange: Exchange, response: Response): Promise<void>;
  answered?(exchange: Exchange, response: Response): void;
}
