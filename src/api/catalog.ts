// Owns repository listing: the catalog, paginated with n/last and Link.
// Implements Docker's `/v2/_catalog` (not part of OCI v1.1, but every client expects it).

import { type Context, json, nextLink, pageParams, paginate } from "../http.ts";
import type { Registry } from "../registry.ts";
import { REPOSITORIES } from "../storage/paths.ts";

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;

export async function listCatalog(ctx: Context): Promise<Response> {
  const page = pageParams(ctx.url, MAX_PAGE, true);
  const { items, next } = paginate(
    await listRepositories(ctx.registry),
    (name) => name,
    page,
    DEFAULT_PAGE,
  );
  const headers = new Headers();
  if (next !== undefined) headers.set("link", nextLink(ctx, next, page.n ?? DEFAULT_PAGE));
  return json({ repositories: items }, { headers });
}

/** Every repository that has held a manifest, sorted; a walk of `repositories/`. */
export async function listRepositories(registry: Registry): Promise<string[]> {
  const names: string[] = [];
  async function walk(prefix: string, name: string): Promise<void> {
    const children = await registry.driver.list(prefix);
    if (name && children.includes("_manifests")) names.push(name);
    for (const child of children) {
      if (!child.startsWith("_")) {
        await walk(`${prefix}/${child}`, name ? `${name}/${child}` : child);
      }
    }
  }
  await walk(REPOSITORIES, "");
  return names.sort();
}
