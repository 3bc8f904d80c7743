// Owns one repository's tag listing over HTTP, paginated with n/last and Link.
// Implements distribution-spec v1.1 end-8a/8b.

import {
  type Context,
  json,
  pageHeaders,
  pageParams,
  type Paging,
  repositoryName,
} from "../http.ts";

const TAGS_PAGING: Paging = { size: 10_000, max: 10_000 };

export async function listTags(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const page = pageParams(ctx.url, TAGS_PAGING);
  const { items, next } = await ctx.store.tags(name, page);
  return json({ name, tags: items }, { headers: pageHeaders(ctx, page, next) });
}
