// Owns the registry of config-file sections: each feature's key, its parser, whether SIGHUP reloads it.
// A feature adds one entry here; the file reader and the reload know sections only through it.

import { type Policy, policyFrom } from "../auth/policy.ts";
import { parseImmutable, parseQuotas, parseRetention } from "../policy/rules.ts";
import type { Problems } from "../fields.ts";
import { checkUpstreamEntries, type UpstreamEntry } from "../proxy/config.ts";
import { type NotifyValue, notifyValue } from "../ops/events/settings.ts";

/** A parser that throws one Error for the whole value: the problem stands at the section's key. */
const whole = <T>(parse: (value: unknown) => T) => (value: unknown, problems: Problems) => {
  try {
    return parse(value);
  } catch (error) {
    problems.add([], (error as Error).message);
    return undefined;
  }
};

/**
 * One top-level key of the config file that is more than a flag's value: a feature's rules or
 * settings, parsed into what the feature runs on. `parse` gets the plain value (YAML and JSON
 * read alike) and reports each problem with its path inside the value, so that the file reader
 * can name its line and column; an Error it throws is one problem at the key.
 */
export interface Section<K extends string = string, T = unknown> {
  key: K;
  /** SIGHUP applies a change without a restart (src/settings/reload.ts). */
  reloadable: boolean;
  /** What the section holds, for `--help` and the README. */
  help: string;
  parse(value: unknown, problems: Problems): T;
}

const section = <K extends string, T>(entry: Section<K, T>) => entry;

/**
 * Every section. A key that is also a flag (`access-policy`) takes the flag's value when the
 * file gives one of the flag's type (a path), and the section's otherwise (rules inline).
 */
export const SECTIONS = [
  section({
    key: "access-policy",
    reloadable: true,
    help: "the access policy inline (or a file path, as --access-policy)",
    parse: whole((value): Policy => policyFrom(value)),
  }),
  section({
    key: "retention",
    reloadable: true,
    help: "rules deleting tags and untagged manifests, applied by GC",
    parse: parseRetention,
  }),
  section({
    key: "immutable-tags",
    reloadable: true,
    help: "tags that never move once pushed",
    parse: parseImmutable,
  }),
  section({
    key: "quotas",
    reloadable: true,
    help: "stored bytes allowed per repository pattern",
    parse: parseQuotas,
  }),
  section({
    key: "upstreams",
    reloadable: false,
    help: "registries mirrored as a pull-through cache (the keys of --proxy-config's upstreams)",
    parse: whole((value): UpstreamEntry[] => checkUpstreamEntries(value)),
  }),
  section({
    key: "notifications",
    reloadable: true,
    help: "webhook endpoints (the keys of --notify-config: endpoints, maxPending)",
    parse: whole((value): NotifyValue => notifyValue(value, "notifications")),
  }),
] as const;

type AnySection = (typeof SECTIONS)[number];

/** The parsed value of each section the file has. */
export type Sections = {
  [S in AnySection as S["key"]]?: Exclude<ReturnType<S["parse"]>, undefined>;
};

export const SECTION_KEYS: readonly string[] = SECTIONS.map((s) => s.key);

export function findSection(key: string): Section | undefined {
  return (SECTIONS as readonly Section[]).find((s) => s.key === key);
}
