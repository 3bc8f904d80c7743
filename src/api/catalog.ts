// Owns repository listings over HTTP: the catalog, and every repository with its tags, paginated.
// Implements Docker's `/v2/_catalog` (not in OCI v1.1, but every client expects it) and `/v2/tags/list`.

import { type Context, json, pageHeaders, pageParams, type Paging } from "../http.ts";

const CATALOG_PAGING: Paging = { size: 1000, max: 10_000, strict: true };
const ALL_TAGS_PAGING: Paging = { size: 1000, max: 1000 };

export async function listCatalog(ctx: Context): Promise<Response> {
  const page = pageParams(ctx.url, CATALOG_PAGING);
  const { items, next } = await ctx.store.catalog(page, ctx.access?.canList);
  return json({ repositories: items }, { headers: pageHeaders(ctx, page, next) });
}

/** GET /v2/tags/list: `{"repositories":[{"name","tags"}]}`, a page of the catalog, sorted by name. */
export async function listAllTags(ctx: Context): Promise<Response> {
  const page = pageParams(ctx.url, ALL_TAGS_PAGING);
  const { items, next } = await ctx.store.catalogWithTags(page, ctx.access?.canList);
  return json({ repositories: items }, { headers: pageHeaders(ctx, page, next) });
}
