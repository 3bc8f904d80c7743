// Owns tag listing: one repository's tags (paginated) and every repository with its tags.
// Implements distribution-spec v1.1 end-8a/8b; `/v2/tags/list` is Simple Registry's own.

import { RegistryError } from "../errors.ts";
import { type Context, json, nextLink, pageParams, paginate, repositoryName } from "../http.ts";
import type { Registry } from "../registry.ts";
import { repositoryPath, tagsPath } from "../storage/paths.ts";
import { listRepositories } from "./catalog.ts";

const MAX_TAGS_PAGE = 10_000;

export async function listTags(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const page = pageParams(ctx.url, MAX_TAGS_PAGE);
  const tags = await sortedTags(ctx.registry, name);
  // A repository with tags exists; without, one listing tells an empty one from an unknown one.
  if (tags.length === 0 && (await ctx.registry.driver.list(repositoryPath(name))).length === 0) {
    throw new RegistryError("NAME_UNKNOWN", undefined, { detail: { name } });
  }
  const { items, next } = paginate(tags, (tag) => tag, page, MAX_TAGS_PAGE);
  const headers = new Headers();
  if (next !== undefined) headers.set("link", nextLink(ctx, next, page.n ?? MAX_TAGS_PAGE));
  return json({ name, tags: items }, { headers });
}

/** GET /v2/tags/list: `{"repositories":[{"name","tags"}]}`, sorted by name. */
export async function listAllTags(ctx: Context): Promise<Response> {
  // With auth on, only the repositories the caller may pull are listed.
  const names = (await listRepositories(ctx.registry)).filter((name) =>
    ctx.access?.canList(name) ?? true
  );
  const repositories = await Promise.all(
    names.map(async (name) => ({ name, tags: await sortedTags(ctx.registry, name) })),
  );
  return json({ repositories });
}

export async function sortedTags(registry: Registry, name: string): Promise<string[]> {
  // Code-unit order is ASCII order for the tag alphabet, as distribution sorts.
  return (await registry.driver.list(tagsPath(name))).sort();
}
