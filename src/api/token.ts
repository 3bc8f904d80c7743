// Owns the route handler of /auth/token: it hands the request to the built-in token server.
// Implements distribution's docs/spec/auth/token.md endpoint (404 when this process runs no server).

import { RegistryError } from "../errors.ts";
import type { Context } from "../http.ts";

export function tokenEndpoint(ctx: Context): Promise<Response> {
  if (ctx.auth?.tokenEndpoint) return ctx.auth.tokenEndpoint(ctx);
  return Promise.reject(new RegistryError("UNSUPPORTED", "no token server here", { status: 404 }));
}
