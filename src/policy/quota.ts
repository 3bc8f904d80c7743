// Owns quota accounting: stored bytes per namespace (each blob once), and room reserved by pushes.
// Implements issue 16's quotas below HTTP; src/policy/store.ts refuses what would not fit.

/*
 * A namespace is what one quota rule covers: the repositories its globs match, together (or each
 * on its own with `per-repository`). Its usage is the size of every distinct digest linked into
 * them (layers, configs, manifests), from one walk of the storage the first time it is needed,
 * then kept by the pushes that link new digests. Deletes and GC passes mark it stale, and the
 * next push through it walks again (pushes meanwhile are added after the walk).
 *
 * A push reserves room before it writes: a blob as its bytes arrive (chunk by chunk, so a
 * stream without a length is stopped where it goes past the quota), a manifest by its size.
 * Checking and reserving happen with no await in between, so concurrent pushes never hold more
 * than the quota together; a digest two of them push at once is reserved twice until both end.
 */

import { createLru } from "../cache.ts";
import { RegistryError } from "../errors.ts";
import type { Digest } from "../grammar.ts";
import { blobPath, layersPath, revisionsPath } from "../storage/paths.ts";
import { listDigestTree, walkRepositories } from "../store/inventory.ts";
import { orMissing, type StoreState } from "../store/state.ts";
import type { QuotaUsage } from "../store/store.ts";
import type { QuotaRule } from "./rules.ts";

export type { QuotaUsage };

/** Room held by one push; `grow` adds to it (or throws DENIED), `done` links or releases it. */
export interface Hold {
  grow(bytes: number): void;
  /** The digest is linked now (it counts from here), or the push failed (`undefined`). */
  done(linked?: { digest: string; size: number }): void;
}

export interface Quotas {
  /** Reserves `bytes` in every namespace of `name` that lacks `digest`; DENIED when it won't fit. */
  admit(name: string, digest: string | undefined, bytes: number): Promise<Hold>;
  /** Whether any quota covers the repository (pushes elsewhere skip the accounting). */
  covers(name: string): boolean;
  /** Marks the namespaces of `name` (all, without one) for a new walk: something was deleted. */
  stale(name?: string): void;
  /** Every namespace's usage (walking those never walked); per-repository ones as loaded. */
  usage(): Promise<QuotaUsage[]>;
}

interface Namespace {
  rule: QuotaRule;
  quota: string;
  /** digest → size, once walked. */
  digests?: Map<string, number>;
  bytes: number;
  reserved: number;
  stale: boolean;
  loading?: Promise<void>;
  /** Digests linked while a walk was under way, added once it ends. */
  linkedDuringWalk?: [string, number][];
}

/** Sizes of digests, remembered (they never change): a walk stats each blob once. */
const SIZE_CACHE_ENTRIES = 200_000;

export function createQuotas(state: StoreState, rules: () => readonly QuotaRule[]): Quotas {
  const namespaces = new Map<string, Namespace>();
  const sizes = createLru<number>(SIZE_CACHE_ENTRIES);

  const keyOf = (rule: QuotaRule, name: string) =>
    `${rule.perRepository ? `${name}@` : ""}${rule.patterns.join(",")}`;
  const matching = (name: string) =>
    rules().filter((rule) => rule.repositories.some((glob) => glob.test(name)));

  /** The namespace a rule makes for a repository (the same for all, unless per-repository). */
  function namespaceFor(rule: QuotaRule, name: string): Namespace {
    const key = keyOf(rule, name);
    let namespace = namespaces.get(key);
    if (!namespace) {
      const quota = rule.perRepository ? name : rule.patterns.join(", ");
      namespace = { rule, quota, bytes: 0, reserved: 0, stale: true };
      namespaces.set(key, namespace);
    }
    namespace.rule = rule; // a reload may change the limit of the same globs
    return namespace;
  }

  const namespacesOf = (name: string) => matching(name).map((rule) => namespaceFor(rule, name));

  async function sizeOf(digest: Digest): Promise<number> {
    const known = sizes.get(digest.value);
    if (known !== undefined) return known;
    const size = (await orMissing(state.driver.stat(blobPath(digest))))?.size ?? 0;
    sizes.set(digest.value, size);
    return size;
  }

  async function walk(namespace: Namespace, repositories: string[]): Promise<void> {
    const digests = new Map<string, number>();
    for (const name of repositories) {
      for (const tree of [layersPath(name), revisionsPath(name)]) {
        for (const digest of (await listDigestTree(state.driver, tree)).digests) {
          if (!digests.has(digest.value)) digests.set(digest.value, await sizeOf(digest));
        }
      }
    }
    namespace.digests = digests;
    namespace.bytes = [...digests.values()].reduce((sum, size) => sum + size, 0);
  }

  function load(namespace: Namespace, name?: string): Promise<void> {
    if (!namespace.stale && namespace.digests) return Promise.resolve();
    namespace.loading ??= (async () => {
      namespace.stale = false;
      namespace.linkedDuringWalk = [];
      try {
        const repositories = namespace.rule.perRepository && name !== undefined
          ? [name]
          : (await walkRepositories(state.driver)).filter((repository) =>
            namespace.rule.repositories.some((glob) => glob.test(repository))
          );
        await walk(namespace, repositories);
        for (const [digest, size] of namespace.linkedDuringWalk) link(namespace, digest, size);
      } catch (error) {
        namespace.stale = true;
        throw error;
      } finally {
        namespace.linkedDuringWalk = undefined;
        namespace.loading = undefined;
      }
    })();
    return namespace.loading;
  }

  function link(namespace: Namespace, digest: string, size: number) {
    if (namespace.linkedDuringWalk) namespace.linkedDuringWalk.push([digest, size]);
    if (!namespace.digests || namespace.digests.has(digest)) return;
    namespace.digests.set(digest, size);
    namespace.bytes += size;
  }

  return {
    covers: (name) => matching(name).length > 0,

    async admit(name, digest, bytes) {
      const spaces = namespacesOf(name);
      await Promise.all(spaces.map((namespace) => load(namespace, name)));
      // From here on no await: checking and reserving are one step for concurrent pushes.
      const needing = spaces.filter((ns) => digest === undefined || !ns.digests!.has(digest));
      let held = 0;
      const grow = (more: number) => {
        for (const ns of needing) {
          if (ns.bytes + ns.reserved + more > ns.rule.maxBytes) throw exceeded(ns, held + more);
        }
        for (const ns of needing) ns.reserved += more;
        held += more;
      };
      grow(bytes);
      let finished = false;
      return {
        grow,
        done(linked) {
          if (finished) return;
          finished = true;
          for (const ns of needing) ns.reserved -= held;
          if (linked) { for (const ns of spaces) link(ns, linked.digest, linked.size); }
        },
      };
    },

    stale(name) {
      for (const ns of name === undefined ? namespaces.values() : namespacesOf(name)) {
        ns.stale = true;
      }
    },

    async usage() {
      const listed: QuotaUsage[] = [];
      let repositories: string[] | undefined;
      for (const rule of rules()) {
        let spaces = [namespaceFor(rule, "")];
        if (rule.perRepository) {
          repositories ??= await walkRepositories(state.driver);
          spaces = repositories.filter((name) => rule.repositories.some((glob) => glob.test(name)))
            .map((name) => namespaceFor(rule, name));
        }
        for (const ns of spaces) {
          await load(ns, ns.quota);
          listed.push({
            quota: ns.quota,
            rule: rule.index,
            maxBytes: rule.maxBytes,
            usedBytes: ns.bytes,
            reservedBytes: ns.reserved,
            digests: ns.digests?.size ?? 0,
          });
        }
      }
      return listed;
    },
  };
}

function exceeded(namespace: Namespace, needed: number): RegistryError {
  const { rule } = namespace;
  const used = namespace.bytes + namespace.reserved;
  const inFlight = namespace.reserved > 0
    ? ` (${formatBytes(namespace.reserved)} of it by pushes in flight)`
    : "";
  return new RegistryError(
    "DENIED",
    `quota exceeded for ${namespace.quota}: ${formatBytes(used)} of ${
      formatBytes(rule.maxBytes)
    } used${inFlight}, this push needs ${formatBytes(needed)} more (quotas rule ${rule.index})`,
    {
      detail: {
        quota: namespace.quota,
        maxBytes: rule.maxBytes,
        usedBytes: namespace.bytes,
        reservedBytes: namespace.reserved,
        neededBytes: needed,
      },
    },
  );
}

/** `1.5 GiB`, `300 KiB`, `12 B`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
