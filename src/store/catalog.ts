// Owns the catalog: the index of repositories that hold manifests, listed in sorted pages.
// Implements Docker's `/v2/_catalog` and Simple Registry's `/v2/tags/list` below HTTP.

import {
  CATALOG,
  CATALOG_INDEXED,
  catalogEntryPath,
  catalogIndexedPath,
  MANIFESTS,
  parseCatalogEntry,
} from "../storage/paths.ts";
import { walkRepositories } from "./inventory.ts";
import { firstAfter, type Page, type PageOf } from "./page.ts";
import { mapPool } from "../pool.ts";
import { orMissing, type StoreState } from "./state.ts";

/** Storage operations run at once when a listing fills in or reads many entries. */
const IO_POOL = 16;

/** Which repositories a caller may see; absent: all. */
export type Visible = (name: string) => boolean;

/**
 * Shared storage: how long a listing of the index serves pages before it is listed again, so
 * that walking a large catalog page by page lists it once, not once a page. A repository first
 * pushed through another instance shows here at most this much later.
 */
export const SHARED_CATALOG_TTL = 10_000;

/**
 * Every repository that has held a manifest, sorted: one listing of the `_catalog/` index. A
 * store written before the index existed is walked once and the index filled in. The sorted
 * names stay in memory, so a page costs what it returns: for good on unshared storage (this
 * process writes every entry), for SHARED_CATALOG_TTL when other instances write too.
 */
export function sortedRepositories(state: StoreState, now = Date.now()): Promise<string[]> {
  const expired = state.sharedStorage && now - state.catalogListedAt > SHARED_CATALOG_TTL;
  if (!state.catalog || expired) {
    // Set before the listing starts: an entry written after the listing read the folder is
    // inserted by its writer (addToCatalog), which finds this promise.
    state.catalogListedAt = now;
    const loading: Promise<string[]> = loadCatalog(state).catch((error) => {
      if (state.catalog === loading) state.catalog = undefined;
      throw error;
    });
    state.catalog = loading;
  }
  return state.catalog;
}

async function loadCatalog(state: StoreState): Promise<string[]> {
  const entries = await state.driver.list(CATALOG);
  const indexed = entries.map(parseCatalogEntry).filter((name) => name !== undefined);
  if (entries.includes(CATALOG_INDEXED)) return indexed.sort();
  // The walk the index replaces: repositories that hold a manifest.
  const walked = await walkRepositories(state.driver, [MANIFESTS]);
  await mapPool(walked, IO_POOL, (name) => addEntry(state, name));
  await state.driver.put(catalogIndexedPath, new Uint8Array());
  return [...new Set([...indexed, ...walked])].sort();
}

/** Records in the index that a repository holds a manifest; called after each manifest PUT. */
export async function addToCatalog(state: StoreState, name: string): Promise<void> {
  const loaded = state.catalog && await state.catalog.catch(() => undefined);
  if (loaded && loaded[firstAfter(loaded, same, name) - 1] === name) return;
  await addEntry(state, name);
  const names = state.catalog && await state.catalog.catch(() => undefined);
  const at = names && firstAfter(names, same, name);
  if (names && names[at! - 1] !== name) names.splice(at!, 0, name);
}

const same = (name: string) => name;

async function addEntry(state: StoreState, name: string): Promise<void> {
  const key = catalogEntryPath(name);
  if (!await orMissing(state.driver.stat(key))) await state.driver.put(key, new Uint8Array());
}

/** One page of the repositories the caller may see. */
export async function listRepositories(
  state: StoreState,
  page: Page,
  visible: Visible = () => true,
): Promise<PageOf<string>> {
  const names = await sortedRepositories(state);
  const items: string[] = [];
  if (page.n === 0) return { items };
  let at = page.last === undefined ? 0 : firstAfter(names, same, page.last);
  for (; at < names.length && items.length <= page.n; at++) {
    if (visible(names[at])) items.push(names[at]);
  }
  if (items.length <= page.n) return { items };
  items.pop();
  return { items, next: items[items.length - 1] };
}
