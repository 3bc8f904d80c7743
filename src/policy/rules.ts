// Owns the policy rules of the config file: retention, immutable tags and quotas, read and checked.
// Each list is a config section (src/settings/sections.ts); rules apply by repository glob.

import {
  boolean,
  count,
  duration,
  globs,
  list,
  mapping,
  type Path,
  type Problems,
  regexps,
  size,
} from "../fields.ts";

/** What every rule starts with: which repositories it covers, and its place for messages. */
export interface RuleBase {
  /** 1-based position in its list: "retention rule 2". */
  index: number;
  /** The globs as written, for messages and the quota endpoint. */
  patterns: string[];
  repositories: RegExp[];
}

/**
 * Retention: delete criteria select tags (older than, not pulled for); keep criteria protect
 * them (the N most recently pushed, names matching a regex). With no delete criterion,
 * `keepLast` alone deletes every tag beyond the N newest.
 */
export interface RetentionRule extends RuleBase {
  keepLast?: number;
  keepTags?: RegExp[];
  olderThan?: number;
  notPulledFor?: number;
  /** Manifests no tag reaches, once their record is older than this (ms). */
  untaggedAfter?: number;
}

/** Tags matching `tags` in matching repositories never move; deleting them needs `allowDelete`. */
export interface ImmutableRule extends RuleBase {
  tags: RegExp[];
  allowDelete: boolean;
}

/** Stored bytes of the matching repositories together (each blob once), or of each one. */
export interface QuotaRule extends RuleBase {
  maxBytes: number;
  perRepository: boolean;
}

export const RETENTION_KEYS = [
  "repositories",
  "keep-last",
  "keep-tags",
  "older-than",
  "not-pulled-for",
  "untagged-after",
  "comment",
] as const;

export function parseRetention(value: unknown, problems: Problems): RetentionRule[] {
  return list(value, [], problems, (item, path) => {
    const rule = mapping(item, path, problems, RETENTION_KEYS);
    if (!rule) return undefined;
    const base = ruleBase(rule, path, problems);
    const optional = <T>(key: string, read: (v: unknown, p: Path, pr: Problems) => T) =>
      rule[key] === undefined ? undefined : read(rule[key], [...path, key], problems);
    const parsed: RetentionRule = {
      ...base!,
      keepLast: optional("keep-last", count),
      keepTags: optional("keep-tags", regexps),
      olderThan: optional("older-than", duration),
      notPulledFor: optional("not-pulled-for", duration),
      untaggedAfter: optional("untagged-after", duration),
    };
    const deletes = ["keep-last", "older-than", "not-pulled-for", "untagged-after"];
    if (!deletes.some((key) => rule[key] !== undefined)) {
      problems.add(path, `the rule deletes nothing: give ${deletes.join(", ")} or several`);
    }
    return base && parsed;
  });
}

export function parseImmutable(value: unknown, problems: Problems): ImmutableRule[] {
  return list(value, [], problems, (item, path) => {
    const rule = mapping(item, path, problems, ["repositories", "tags", "allow-delete", "comment"]);
    if (!rule) return undefined;
    const base = ruleBase(rule, path, problems);
    const tags = rule.tags === undefined ? [/^/] : regexps(rule.tags, [...path, "tags"], problems);
    const allowDelete = rule["allow-delete"] === undefined
      ? false
      : boolean(rule["allow-delete"], [...path, "allow-delete"], problems);
    if (!base || !tags || allowDelete === undefined) return undefined;
    return { ...base, tags, allowDelete };
  });
}

export function parseQuotas(value: unknown, problems: Problems): QuotaRule[] {
  return list(value, [], problems, (item, path) => {
    const rule = mapping(item, path, problems, [
      "repositories",
      "max-bytes",
      "per-repository",
      "comment",
    ]);
    if (!rule) return undefined;
    const base = ruleBase(rule, path, problems);
    if (rule["max-bytes"] === undefined) {
      problems.add(path, `a quota needs "max-bytes"`);
      return undefined;
    }
    const maxBytes = size(rule["max-bytes"], [...path, "max-bytes"], problems);
    const perRepository = rule["per-repository"] === undefined
      ? false
      : boolean(rule["per-repository"], [...path, "per-repository"], problems);
    if (!base || maxBytes === undefined || perRepository === undefined) return undefined;
    return { ...base, maxBytes, perRepository };
  });
}

function ruleBase(
  rule: Record<string, unknown>,
  path: Path,
  problems: Problems,
): RuleBase | undefined {
  if (rule.repositories === undefined) {
    problems.add(path, `a rule needs "repositories" (globs such as team/** or "**")`);
    return undefined;
  }
  const matched = globs(rule.repositories, [...path, "repositories"], problems);
  if (!matched) return undefined;
  const index = Number(path[path.length - 1]) + 1;
  return { index, patterns: matched.patterns, repositories: matched.regexps };
}

/** The first rule whose globs match the repository: the one that decides. */
export function ruleFor<R extends RuleBase>(rules: readonly R[], name: string): R | undefined {
  return rules.find((rule) => rule.repositories.some((glob) => glob.test(name)));
}

/** The first immutable rule matching both the repository and the tag, if any. */
export function immutableRule(
  rules: readonly ImmutableRule[],
  name: string,
  tag: string,
): ImmutableRule | undefined {
  return rules.find((rule) =>
    rule.repositories.some((glob) => glob.test(name)) &&
    rule.tags.some((pattern) => pattern.test(tag))
  );
}
