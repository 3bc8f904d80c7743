// Owns pages of sorted listings: `n` items after `last`, and the `last` of the page that follows.
// Implements the spec's pagination rule (end-8b) for tags, the catalog and referrers.

/** `n` items after `last` (exclusive); n = 0 is an empty page with nothing after it. */
export interface Page {
  n: number;
  last?: string;
}

export interface PageOf<T> {
  items: T[];
  /** The `last` of the following page; absent on the last page. */
  next?: string;
}

/** Cuts one page out of items sorted by `key`. */
export function pageOf<T>(items: T[], key: (item: T) => string, page: Page): PageOf<T> {
  const start = page.last === undefined ? 0 : firstAfter(items, key, page.last);
  const rest = items.slice(start, start + page.n + 1);
  if (page.n === 0) return { items: [] };
  if (rest.length <= page.n) return { items: rest };
  const slice = rest.slice(0, page.n);
  return { items: slice, next: key(slice[slice.length - 1]) };
}

/** Index of the first item whose key sorts after `last` (binary search: items are sorted). */
export function firstAfter<T>(items: T[], key: (item: T) => string, last: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (key(items[mid]) <= last) low = mid + 1;
    else high = mid;
  }
  return low;
}
