// Owns the UI's listings: repositories (filtered, paged, with tag count, size, last push) and tags.
// No spec section: built on the store's catalog and tags, a page's details gathered for that page only.

import { RegistryError } from "../errors.ts";
import { type Context, json, repositoryName } from "../http.ts";
import { mapPool } from "../pool.ts";
import type { TagRecord } from "../store/store.ts";
import { type ManifestFacts, manifestFacts, readManifest } from "./oci.ts";
import { mayDelete } from "./session.ts";

/** Rows a page holds by default and at most. */
const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;
/** Repositories or tags whose details are gathered at once. */
const ROW_POOL = 8;
/** How long a repository's figures are reused (ms): pushes show up after at most this. */
export const SUMMARY_TTL_MS = 15_000;
const ALL = Number.MAX_SAFE_INTEGER;

export interface RepositorySummary {
  name: string;
  tags: number;
  /** Bytes of the blobs linked into it. */
  size: number;
  /** The newest tag write, ISO time; absent without tags. */
  pushed?: string;
}

function pageSize(ctx: Context): number {
  const raw = Number(ctx.url.searchParams.get("n") ?? PAGE_SIZE);
  return Number.isInteger(raw) && raw > 0 ? Math.min(raw, MAX_PAGE_SIZE) : PAGE_SIZE;
}

/** A value computed at most every SUMMARY_TTL_MS per key, shared by concurrent requests. */
async function recent<T>(ctx: Context, key: string, compute: () => Promise<T>): Promise<T> {
  const ui = ctx.ui!;
  const cached = ui.summaries.get(key);
  if (cached && ui.now() - cached.at < SUMMARY_TTL_MS) return await cached.value as T;
  const value = compute();
  ui.summaries.set(key, { at: ui.now(), value });
  value.catch(() => ui.summaries.delete(key));
  return await value;
}

/** Forgets a repository's figures (after a delete from the UI). */
export function forgetRepository(ctx: Context, name: string): void {
  ctx.ui!.summaries.delete(`tags:${name}`);
  ctx.ui!.summaries.delete(`summary:${name}`);
}

/** Every tag of a repository with its digest and push time, newest figures within the TTL. */
function tagRecords(ctx: Context, name: string): Promise<TagRecord[]> {
  return recent(ctx, `tags:${name}`, async () => {
    const { items } = await ctx.store.tags(name, { n: ALL });
    return ctx.store.describe.tags(name, items);
  });
}

export function repositorySummary(ctx: Context, name: string): Promise<RepositorySummary> {
  return recent(ctx, `summary:${name}`, async () => {
    const [tags, usage] = await Promise.all([
      tagRecords(ctx, name),
      ctx.store.describe.usage(name),
    ]);
    let pushed: Date | undefined;
    for (const { pushed: at } of tags) if (!pushed || at > pushed) pushed = at;
    return {
      name,
      tags: tags.length,
      size: usage.blobs.reduce((total, blob) => total + blob.size, 0),
      ...(pushed && { pushed: pushed.toISOString() }),
    };
  });
}

/** Whether a name matches a filter: every space-separated term is part of it. */
export function matchesFilter(name: string, filter: string): boolean {
  return filter.toLowerCase().split(/\s+/).filter(Boolean).every((term) => name.includes(term));
}

/**
 * GET /ui/api/repositories?q=&ns=&n=&last= — a page of the repositories the caller may list,
 * each with its figures; the first page also counts the matches and the top namespaces.
 */
export async function listRepositories(ctx: Context): Promise<Response> {
  const params = ctx.url.searchParams;
  const filter = params.get("q") ?? "";
  const namespace = params.get("ns") ?? "";
  const last = params.get("last") || undefined;
  const listed = (name: string) => ctx.access?.canList(name) ?? true;
  const inNamespace = (name: string) => !namespace || name.startsWith(`${namespace}/`);
  const visible = (name: string) =>
    listed(name) && inNamespace(name) && matchesFilter(name, filter);
  const page = await ctx.store.catalog({ n: pageSize(ctx), last }, visible);
  const items = await mapPool(page.items, ROW_POOL, (name) => repositorySummary(ctx, name));
  const body: Record<string, unknown> = { items, next: page.next };
  if (!last) {
    const all = await ctx.store.catalog({ n: ALL }, listed);
    body.total = all.items.filter((name) => inNamespace(name) && matchesFilter(name, filter))
      .length;
    body.namespaces = topNamespaces(all.items);
  }
  return json(body);
}

/** The most populated first path components, for the namespace filter. */
function topNamespaces(names: string[], limit = 12): { name: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const name of names) {
    const slash = name.indexOf("/");
    if (slash > 0) {
      const namespace = name.slice(0, slash);
      counts.set(namespace, (counts.get(namespace) ?? 0) + 1);
    }
  }
  return [...counts].map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1))
    .slice(0, limit);
}

export interface TagRow extends Partial<ManifestFacts> {
  tag: string;
  digest: string;
  pushed: string;
  /** Set when the tag's manifest could not be read. */
  error?: string;
}

/**
 * GET /ui/api/r/<name>/tags?sort=name|pushed&order=asc|desc&n=&cursor= — a page of tags, each
 * with its manifest's facts. `cursor` is the offset `next` gave.
 */
export async function listTags(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const params = ctx.url.searchParams;
  const sort = params.get("sort") === "pushed" ? "pushed" : "name";
  const descending = (params.get("order") ?? (sort === "pushed" ? "desc" : "asc")) === "desc";
  const offset = Math.max(0, Math.floor(Number(params.get("cursor") ?? 0)) || 0);
  const n = pageSize(ctx);
  const records = [...await tagRecords(ctx, name)];
  if (records.length === 0) {
    // Unknown repositories are NAME_UNKNOWN, as the API says (an empty one lists nothing).
    await ctx.store.tags(name, { n: 0 });
  }
  const byName = (a: TagRecord, b: TagRecord) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0);
  records.sort(
    sort === "pushed" ? (a, b) => a.pushed.getTime() - b.pushed.getTime() || byName(a, b) : byName,
  );
  if (descending) records.reverse();
  const slice = records.slice(offset, offset + n);
  const items = await mapPool(slice, ROW_POOL, async (record): Promise<TagRow> => {
    const row = {
      tag: record.tag,
      digest: record.digest.value,
      pushed: record.pushed.toISOString(),
    };
    try {
      const manifest = await readManifest(ctx, name, record.digest.value);
      return { ...row, ...await manifestFacts(ctx, name, manifest) };
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      return { ...row, error: error.message };
    }
  });
  const end = offset + slice.length;
  return json({
    name,
    total: records.length,
    offset,
    items,
    next: end < records.length ? String(end) : undefined,
    canDelete: mayDelete(ctx, name),
    summary: await repositorySummary(ctx, name),
  });
}

/** The tags of a repository that name a digest (for a manifest's page), at most `limit`. */
export async function tagsOf(
  ctx: Context,
  name: string,
  digest: string,
  limit = 100,
): Promise<string[]> {
  return (await tagRecords(ctx, name)).filter((record) => record.digest.value === digest)
    .map((record) => record.tag).sort().slice(0, limit);
}
