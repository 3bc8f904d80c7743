// Owns the quota endpoint: each quota's limit, stored bytes and bytes held by pushes in flight.
// Simple Registry's `GET /v2/_quota` (issue 16); the same figures feed the metrics.

import { type Context, json } from "../http.ts";

export async function listQuotas(ctx: Context): Promise<Response> {
  return json({ quotas: await ctx.store.quotas() });
}
