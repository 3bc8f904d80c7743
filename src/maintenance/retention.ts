// Owns retention: which tags and manifests the rules delete, why, and deleting them through the store.
// Implements issue 16's retention rules; runs inside a GC pass, before the mark (src/maintenance/gc.ts).

/*
 * A pass plans each repository the first retention rule matches, from GC's listing and the
 * stored times (a tag's push time is its file's modification time; the clock is `now`):
 * 1. Tags. Delete criteria select (older than, not pulled for); keep criteria protect (the N
 *    most recently pushed, a name matching `keep-tags`, any immutable rule). A rule with
 *    `keep-last` and no delete criterion deletes every other tag.
 * 2. Manifests. What the surviving tags reach (index children, referrers) lives. What only the
 *    deleted tags reached goes with them — the image, its children, its referrers — and with
 *    `untagged-after`, so does every other manifest nothing reaches once its record is older.
 * The plan is carried out with the store's own deletes (tags first, then manifests, parents
 * before children), each conditional on what the plan saw: a tag still naming the same digest
 * and not written since, a manifest record not rewritten and held by no push. A push racing
 * the pass is therefore never undone; what it changed is left for the next pass. A dry run
 * prints the same plan, and applies it to GC's listing as the real run does.
 */

import { formatDuration } from "../duration.ts";
import type { Digest } from "../grammar.ts";
import { log } from "../log.ts";
import { mapPool } from "../pool.ts";
import type { Policies } from "../policy/policies.ts";
import { immutableRule, type RetentionRule, ruleFor } from "../policy/rules.ts";
import { revisionLinkPath, tagPath } from "../storage/paths.ts";
import type { RepositoryListing } from "../store/inventory.ts";
import { lastPulls, prunePulls, pullsSince } from "../store/pulls.ts";
import { orMissing, type StoreState } from "../store/state.ts";
import type { Store } from "../store/store.ts";

export interface Deletion {
  repository: string;
  kind: "tag" | "manifest";
  /** The tag, or the manifest's digest. */
  reference: string;
  /** Which rule, and why: `retention rule 1 (ci/**): older than 7d (pushed …)`. */
  reason: string;
  /** Deleted (false in a dry run, or when a push changed it after the plan). */
  deleted: boolean;
}

export interface RetentionReport {
  dryRun: boolean;
  deletions: Deletion[];
  /** Planned deletions a concurrent push made stale (left for the next pass). */
  skipped: number;
  durationMs: number;
}

export interface RetentionContext {
  dryRun: boolean;
  /** The pass's clock (ms): rules compare stored times with it. */
  now: number;
  signal?: AbortSignal;
  /** A manifest's children and blobs (GC's reader, which remembers what it read). */
  references(digest: Digest): Promise<{ manifests: Digest[] } | undefined>;
}

/** Stats and reads in flight at once while a repository is planned. */
const IO_POOL = 16;

/**
 * Applies the retention rules to every repository of the listing, deleting through `store` (the
 * store with its policies, so quotas see the deletes), and updates the listing to match.
 */
export async function applyRetention(
  store: Store,
  policies: Policies,
  repositories: RepositoryListing[],
  context: RetentionContext,
): Promise<RetentionReport> {
  const t0 = performance.now();
  const report: RetentionReport = {
    dryRun: context.dryRun,
    deletions: [],
    skipped: 0,
    durationMs: 0,
  };
  const since = policies.retention.some((rule) => rule.notPulledFor !== undefined)
    ? await pullsSince(store.state)
    : undefined;
  for (const repository of repositories) {
    if (context.signal?.aborted) break;
    const rule = ruleFor(policies.retention, repository.name);
    if (!rule) continue;
    const plan = await planRepository(store.state, policies, rule, repository, context, since);
    if (plan.length === 0) continue;
    const gone = new Set<string>();
    for (const step of plan) {
      const deleted = context.dryRun ? false : await store.manifests.delete(
        repository.name,
        step.kind === "tag" ? { tag: step.reference } : { digest: step.digest },
        { writtenBy: step.writtenBy, ...(step.kind === "tag" && { digest: step.digest }) },
      );
      if (!context.dryRun && !deleted) {
        report.skipped++;
        continue;
      }
      report.deletions.push({
        repository: repository.name,
        kind: step.kind,
        reference: step.reference,
        reason: step.reason,
        deleted,
      });
      if (step.kind === "tag") repository.tags.delete(step.reference);
      else gone.add(step.reference);
      if (deleted) {
        log.info("retention deleted", {
          "repository.name": repository.name,
          "retention.kind": step.kind,
          "retention.reference": step.reference,
          "retention.reason": step.reason,
        });
      }
    }
    forget(repository, gone);
    if (!context.dryRun) {
      await prunePulls(store.state, repository.name, {
        tags: new Set(repository.tags.keys()),
        manifests: new Set(repository.revisions.map((digest) => digest.value)),
      });
    }
  }
  report.durationMs = Math.round(performance.now() - t0);
  return report;
}

interface Step {
  kind: "tag" | "manifest";
  reference: string;
  digest: Digest;
  /** The stored time the plan saw: the delete happens only if nothing was written since. */
  writtenBy: number;
  reason: string;
}

/** The deletions one rule makes in one repository, in the order they must run. */
async function planRepository(
  state: StoreState,
  policies: Policies,
  rule: RetentionRule,
  repository: RepositoryListing,
  context: RetentionContext,
  since: number | undefined,
): Promise<Step[]> {
  const { name } = repository;
  const { now } = context;
  const label = `retention rule ${rule.index} (${rule.patterns.join(", ")})`;
  const tagged = [...repository.tags].filter((entry): entry is [string, Digest] => !!entry[1]);
  const pushedAt = await mapPool(tagged, IO_POOL, async ([tag]) => {
    return (await orMissing(state.driver.stat(tagPath(name, tag))))?.modified.getTime();
  });
  const tags = tagged.map(([tag, digest], i) => ({ tag, digest, pushed: pushedAt[i] }))
    .filter((t): t is { tag: string; digest: Digest; pushed: number } => t.pushed !== undefined);
  // Newest first; equal times by name, so the same storage always gives the same plan.
  tags.sort((a, b) => b.pushed - a.pushed || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const pulls = rule.notPulledFor !== undefined ? await lastPulls(state, name) : undefined;
  const deletesBy = rule.olderThan !== undefined || rule.notPulledFor !== undefined;

  const steps: Step[] = [];
  const kept = new Set<string>();
  const dropped = new Map<string, string[]>(); // digest → deleted tags naming it
  tags.forEach(({ tag, digest, pushed }, rank) => {
    const why = tagReason(rule, { tag, digest, pushed, rank }, pulls, since, now);
    const protectedTag = immutableRule(policies.immutable, name, tag) !== undefined;
    const keep = protectedTag || (rule.keepLast !== undefined && rank < rule.keepLast) ||
      (rule.keepTags?.some((pattern) => pattern.test(tag)) ?? false) ||
      (deletesBy ? why === undefined : rule.keepLast === undefined);
    if (keep) {
      kept.add(digest.value);
      return;
    }
    steps.push({
      kind: "tag",
      reference: tag,
      digest,
      writtenBy: pushed,
      reason: `${label}: ${why ?? `not among the ${rule.keepLast} most recently pushed`}`,
    });
    dropped.set(digest.value, [...dropped.get(digest.value) ?? [], tag]);
  });
  // Tags whose time could not be read (deleted meanwhile, or unreadable) keep what they name.
  for (const [tag, digest] of tagged) {
    if (!tags.some((t) => t.tag === tag)) kept.add(digest.value);
  }

  const revisions = new Map(repository.revisions.map((digest) => [digest.value, digest]));
  const edges = async (digest: Digest) => [
    ...(await context.references(digest))?.manifests ?? [],
    ...repository.referrers.get(digest.value) ?? [],
  ];
  // What the surviving tags reach lives.
  const live = new Set<string>();
  const queue = [...kept].map((value) => revisions.get(value)).filter((d) => d !== undefined);
  while (queue.length > 0) {
    const digest = queue.pop()!;
    if (live.has(digest.value) || !revisions.has(digest.value)) continue;
    live.add(digest.value);
    queue.push(...await edges(digest));
  }
  // What only deleted tags reached goes with them, parents before children.
  const doomed = new Map<string, string>(); // digest → why
  const order: Digest[] = [];
  const visit: { digest: Digest; why: string }[] = [];
  for (const [value, byTags] of dropped) {
    const digest = revisions.get(value);
    if (digest) visit.push({ digest, why: `named only by deleted tags: ${byTags.join(", ")}` });
  }
  while (visit.length > 0) {
    const { digest, why } = visit.shift()!;
    if (live.has(digest.value) || doomed.has(digest.value) || !revisions.has(digest.value)) {
      continue;
    }
    doomed.set(digest.value, why);
    order.push(digest);
    const children = new Set(
      ((await context.references(digest))?.manifests ?? []).map((d) => d.value),
    );
    for (const next of await edges(digest)) {
      const relation = children.has(next.value) ? "child" : "referrer";
      visit.push({ digest: next, why: `${relation} of deleted ${digest.value}` });
    }
  }
  const untaggedAfter = rule.untaggedAfter;
  const loose = repository.revisions.filter((d) => !live.has(d.value) && !doomed.has(d.value));
  const candidates = [...order, ...untaggedAfter === undefined ? [] : loose];
  const written = await mapPool(candidates, IO_POOL, async (digest) => {
    return (await orMissing(state.driver.stat(revisionLinkPath(name, digest))))?.modified
      .getTime();
  });
  candidates.forEach((digest, i) => {
    const writtenBy = written[i];
    if (writtenBy === undefined) return;
    let why = doomed.get(digest.value);
    if (why === undefined) {
      if (now - writtenBy <= untaggedAfter!) return;
      why = `untagged for more than ${formatDuration(untaggedAfter!)} (written ${iso(writtenBy)})`;
    }
    steps.push({
      kind: "manifest",
      reference: digest.value,
      digest,
      writtenBy,
      reason: `${label}: ${why}`,
    });
  });
  return steps;
}

/** Why a tag meets the rule's delete criteria, or undefined when it meets none. */
function tagReason(
  rule: RetentionRule,
  tag: { tag: string; digest: Digest; pushed: number; rank: number },
  pulls: { tags: Record<string, number>; manifests: Record<string, number> } | undefined,
  since: number | undefined,
  now: number,
): string | undefined {
  if (rule.olderThan !== undefined && now - tag.pushed > rule.olderThan) {
    return `older than ${formatDuration(rule.olderThan)} (pushed ${iso(tag.pushed)})`;
  }
  if (rule.notPulledFor !== undefined && pulls) {
    // A pull by tag or by the digest it names counts; before records began nothing is known.
    const pulled = Math.max(pulls.tags[tag.tag] ?? 0, pulls.manifests[tag.digest.value] ?? 0);
    const last = Math.max(tag.pushed, pulled, since ?? now);
    if (now - last > rule.notPulledFor) {
      const seen = pulled > 0 ? `last pulled ${iso(pulled)}` : `never pulled since ${iso(last)}`;
      return `not pulled for ${formatDuration(rule.notPulledFor)} (${seen})`;
    }
  }
  return undefined;
}

/** Takes deleted manifests out of GC's listing, so the mark that follows sees what is left. */
function forget(repository: RepositoryListing, gone: Set<string>): void {
  if (gone.size === 0) return;
  repository.revisions = repository.revisions.filter((d) => !gone.has(d.value));
  for (const [subject, referrers] of repository.referrers) {
    repository.referrers.set(subject, referrers.filter((d) => !gone.has(d.value)));
  }
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** The lines `gc` prints: one per deletion, with its reason. */
export function describeRetention(report: RetentionReport): string[] {
  const verb = report.dryRun ? "would delete" : "deleted";
  return [
    ...report.deletions.map((d) =>
      `retention: ${verb} ${d.kind} ${d.repository}${d.kind === "tag" ? ":" : "@"}${d.reference}` +
      ` — ${d.reason}`
    ),
    `retention: ${verb} ${report.deletions.filter((d) => d.kind === "tag").length} tags, ` +
    `${report.deletions.filter((d) => d.kind === "manifest").length} manifests` +
    (report.skipped ? `; ${report.skipped} left for the next pass (changed meanwhile)` : ""),
  ];
}
