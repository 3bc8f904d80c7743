// Owns repository listing: the catalog, paginated with n/last and Link.
// Implements Docker's `/v2/_catalog` (not part of OCI v1.1, but every client expects it).

import { type Context, json, nextLink, pageParams, paginate } from "../http.ts";
import { orMissing, type Registry } from "../registry.ts";
import {
  CATALOG,
  CATALOG_INDEXED,
  catalogEntryPath,
  catalogIndexedPath,
} from "../storage/paths.ts";
import { walkRepositories } from "../inventory.ts";

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;

export async function listCatalog(ctx: Context): Promise<Response> {
  const page = pageParams(ctx.url, MAX_PAGE, true);
  const { items, next } = paginate(
    (await listRepositories(ctx.registry)).filter((name) => ctx.access?.canList(name) ?? true),
    (name) => name,
    page,
    DEFAULT_PAGE,
  );
  const headers = new Headers();
  if (next !== undefined) headers.set("link", nextLink(ctx, next, page.n ?? DEFAULT_PAGE));
  return json({ repositories: items }, { headers });
}

/**
 * Every repository that has held a manifest, sorted: one listing of the `_catalog/` index.
 * A store written before the index existed is walked once and the index filled in.
 */
export async function listRepositories(registry: Registry): Promise<string[]> {
  const entries = await registry.driver.list(CATALOG);
  // Entries are names with "/" written "~" (catalogEntryPath); `_indexed` is no name.
  const indexed = entries.filter((entry) => !entry.startsWith("_")).map((entry) =>
    entry.replaceAll("~", "/")
  );
  if (entries.includes(CATALOG_INDEXED)) return indexed.sort();
  // The walk the index replaces: repositories that hold a manifest.
  const walked = await walkRepositories(registry.driver, ["_manifests"]);
  await Promise.all(walked.map((name) => addToCatalog(registry, name)));
  await registry.driver.put(catalogIndexedPath, new Uint8Array());
  return [...new Set([...indexed, ...walked])].sort();
}

/** Records in the index that a repository holds a manifest; called after each manifest PUT. */
export async function addToCatalog(registry: Registry, name: string): Promise<void> {
  const key = catalogEntryPath(name);
  if (!await orMissing(registry.driver.stat(key))) await registry.driver.put(key, new Uint8Array());
}
