// Owns referrers: the descriptor of each manifest whose `subject` is a digest, listed in pages.
// Implements distribution-spec v1.1 end-12a/12b (artifactType filter, pagination) below HTTP.

import type { Digest } from "../grammar.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { mapPool } from "../pool.ts";
import { parseReferrerEntry, referrerPath, referrersPath } from "../storage/paths.ts";
import type { Page, PageOf } from "./page.ts";
import { orMissing, type StoreState } from "./state.ts";

/**
 * Descriptor bytes one page may read: a referrer's annotations can be megabytes each, so a page
 * holds what fits (at least one entry) and a `next` for the rest.
 */
export const MAX_REFERRERS_PAGE_BYTES = 4 * 1024 * 1024;
/** Entries read at once while a page fills. */
const READ_AHEAD = 8;

export interface ReferrersQuery extends Page {
  /** Only descriptors of this artifactType (end-12b). */
  artifactType?: string;
}

/**
 * One page of a subject's referrers, sorted by entry name. Only the page's entries are read:
 * the listing of names is the one cost that grows with the total. With a filter, a page also
 * stops once it has read its byte budget, and `next` resumes after the last entry read.
 */
export async function listReferrers(
  state: StoreState,
  name: string,
  subject: Digest,
  query: ReferrersQuery,
): Promise<PageOf<Descriptor>> {
  if (query.n === 0) return { items: [] };
  const entries = (await state.driver.list(referrersPath(name, subject)))
    .filter((entry) => parseReferrerEntry(entry) !== undefined && entry > (query.last ?? ""))
    .sort();
  const items: Descriptor[] = [];
  let bytes = 0;
  let at = 0;
  while (at < entries.length && items.length < query.n && bytes < MAX_REFERRERS_PAGE_BYTES) {
    const batch = entries.slice(at, at + Math.min(READ_AHEAD, query.n - items.length));
    const read = await mapPool(batch, READ_AHEAD, async (entry) => {
      const key = referrerPath(name, subject, parseReferrerEntry(entry)!);
      const bytes = await orMissing(state.driver.get(key));
      const descriptor = bytes && JSON.parse(new TextDecoder().decode(bytes)) as Descriptor;
      return { descriptor, size: bytes?.length ?? 0 };
    });
    for (const { descriptor, size } of read) {
      if (items.length > 0 && bytes + size > MAX_REFERRERS_PAGE_BYTES) {
        return { items, next: entries[at - 1] };
      }
      at++;
      bytes += size;
      if (descriptor && matches(descriptor, query.artifactType)) {
        items.push(descriptor);
      }
    }
  }
  return at < entries.length ? { items, next: entries[at - 1] } : { items };
}

const matches = (descriptor: Descriptor, artifactType: string | undefined) =>
  artifactType === undefined || descriptor.artifactType === artifactType;
