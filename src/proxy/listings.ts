// Owns proxied listings: a repository's tags and a subject's referrers as the upstream lists them,
// from the cache when the upstream fails or has no referrers API (issue 13).

import { RegistryError } from "../errors.ts";
import type { Digest } from "../grammar.ts";
import { type Descriptor, MAX_MANIFEST_BYTES, OCI_INDEX } from "../oci/manifest.ts";
import { pageOf } from "../store/page.ts";
import type { Page, PageOf, ReferrersQuery } from "../store/store.ts";
import { UpstreamError } from "./client.ts";
import { localError, parseJson, type ProxyContext, readCapped, upstreamFailed } from "./context.ts";

/** A tag list is names only, but a big repository has many. */
const MAX_TAG_LIST_BYTES = 16 * 1024 * 1024;

export function proxyListings(ctx: ProxyContext) {
  const { local } = ctx;

  async function tags(name: string, page: Page): Promise<PageOf<string>> {
    const route = ctx.proxied(name);
    if (!route) return local.tags(name, page);
    const { remote } = route;
    const started = performance.now();
    try {
      if (page.n === 0) return { items: [] };
      const query = new URLSearchParams({ n: String(page.n) });
      if (page.last !== undefined) query.set("last", page.last);
      const response = await ctx.client(route).request(remote, `${remote}/tags/list?${query}`);
      if (response.status === 404) {
        await response.body?.cancel();
        throw new RegistryError(
          "NAME_UNKNOWN",
          `upstream ${route.upstream.name} has no ${remote}`,
          {
            detail: { name },
          },
        );
      }
      const body = response.status === 200
        ? await readCapped(response, MAX_TAG_LIST_BYTES)
        : await response.body?.cancel();
      const list = body && parseJson<{ tags?: unknown }>(body)?.tags;
      const valid = list === null ||
        (Array.isArray(list) && list.every((tag) => typeof tag === "string"));
      if (!body || !valid) throw upstreamFailed(route, `no tag list for ${remote}`);
      ctx.report(route, name, "tags", "miss", performance.now() - started);
      const next = nextLast(response.headers.get("link"));
      return { items: (list ?? []) as string[], ...(next !== undefined && { next }) };
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      const cached = await local.tags(name, page).catch(() => undefined);
      if (!cached) throw localError(error);
      ctx.report(route, name, "tags", "stale", performance.now() - started, error);
      return cached;
    }
  }

  async function referrers(
    name: string,
    subject: Digest,
    query: ReferrersQuery,
  ): Promise<PageOf<Descriptor>> {
    const route = ctx.proxied(name);
    if (!route) return local.referrers(name, subject, query);
    const { remote } = route;
    const reference = `referrers ${subject.value}`;
    const started = performance.now();
    try {
      const filter = query.artifactType === undefined
        ? ""
        : `?${new URLSearchParams({ artifactType: query.artifactType })}`;
      const response = await ctx.client(route).request(
        remote,
        `${remote}/referrers/${subject.value}${filter}`,
        { headers: { accept: OCI_INDEX } },
      );
      const body = response.status === 200
        ? await readCapped(response, MAX_MANIFEST_BYTES)
        : await response.body?.cancel();
      const manifests = body && parseJson<{ manifests?: unknown }>(body)?.manifests;
      // No referrers API upstream (404, distribution 2.8): what the cache holds is the answer.
      if (!Array.isArray(manifests)) return await local.referrers(name, subject, query);
      const items = (manifests as Descriptor[]).filter((d) =>
        typeof d?.digest === "string" &&
        (query.artifactType === undefined || d.artifactType === query.artifactType)
      ).sort((a, b) => a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
      ctx.report(route, name, reference, "miss", performance.now() - started);
      return pageOf(items, (d) => d.digest.replace(":", "-"), query);
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      ctx.report(route, name, reference, "stale", performance.now() - started, error);
      return local.referrers(name, subject, query);
    }
  }

  return { tags, referrers };
}

/** The `last` of a `Link: <…?last=x&n=…>; rel="next"` header, if any. */
function nextLast(link: string | null): string | undefined {
  const target = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  if (!target) return undefined;
  return new URL(target, "http://upstream").searchParams.get("last") ?? undefined;
}
