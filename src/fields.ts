// Owns reading a config file's sections as plain values: typed fields, each problem with its path.
// Sections (src/settings/sections.ts) use these so a problem can name its line and column.

import { parseDuration } from "./duration.ts";
import { globToRegExp } from "./glob.ts";

/** Where a value sits inside the file: keys and list indexes from the top. */
export type Path = readonly (string | number)[];

export interface Problem {
  path: Path;
  message: string;
  /** The problem is the key itself (an unknown key), not its value. */
  key?: boolean;
}

/** Problems found while reading one section; reading goes on, so one pass finds them all. */
export interface Problems {
  add(path: Path, message: string, options?: { key?: boolean }): void;
  readonly list: Problem[];
}

export function createProblems(): Problems {
  const list: Problem[] = [];
  return { list, add: (path, message, options) => list.push({ path, message, ...options }) };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How a value is named in a message: `a string`, `a list`, `true`. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

/** A mapping with only `known` keys (others are problems at their key); undefined if no mapping. */
export function mapping(
  value: unknown,
  path: Path,
  problems: Problems,
  known: readonly string[],
): Record<string, unknown> | undefined {
  if (!isObject(value)) {
    problems.add(path, `expected a mapping of ${known.join(", ")}, got ${describe(value)}`);
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      problems.add([...path, key], `unknown key "${key}" (expected ${known.join(", ")})`, {
        key: true,
      });
    }
  }
  return value;
}

/** A list (absent: an empty one); each item is read by `item`. */
export function list<T>(
  value: unknown,
  path: Path,
  problems: Problems,
  item: (value: unknown, path: Path) => T | undefined,
): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(path, `expected a list, got ${describe(value)}`);
    return [];
  }
  return value.map((v, i) => item(v, [...path, i])).filter((v): v is T => v !== undefined);
}

/** One string or a list of them (`repositories: team/**` or `[a/*, b/*]`). */
export function strings(value: unknown, path: Path, problems: Problems): string[] | undefined {
  const items = typeof value === "string" ? [value] : value;
  if (!Array.isArray(items) || items.length === 0) {
    problems.add(path, `expected a string or a list of strings, got ${describe(value)}`);
    return undefined;
  }
  const bad = items.findIndex((item) => typeof item !== "string" || item === "");
  if (bad >= 0) {
    problems.add(Array.isArray(value) ? [...path, bad] : path, "expected a non-empty string");
    return undefined;
  }
  return items as string[];
}

/** Repository globs (src/glob.ts), compiled; `patterns` keeps their text for messages. */
export function globs(
  value: unknown,
  path: Path,
  problems: Problems,
): { patterns: string[]; regexps: RegExp[] } | undefined {
  const patterns = strings(value, path, problems);
  return patterns && { patterns, regexps: patterns.map(globToRegExp) };
}

/** Regular expressions (JavaScript syntax, unanchored unless written with ^ and $). */
export function regexps(value: unknown, path: Path, problems: Problems): RegExp[] | undefined {
  const sources = strings(value, path, problems);
  if (!sources) return undefined;
  const compiled: RegExp[] = [];
  sources.forEach((source, i) => {
    try {
      compiled.push(new RegExp(source));
    } catch (error) {
      const at = Array.isArray(value) ? [...path, i] : path;
      problems.add(at, `not a regular expression: ${(error as Error).message}`);
    }
  });
  return compiled.length === sources.length ? compiled : undefined;
}

/** A duration such as `7d`, `12h`, `30m` (src/duration.ts), in ms; more than zero. */
export function duration(value: unknown, path: Path, problems: Problems): number | undefined {
  const ms = typeof value === "string" ? parseDuration(value) : undefined;
  if (!ms) {
    problems.add(path, `expected a duration such as 12h or 7d, got ${describe(value)}`);
    return undefined;
  }
  return ms;
}

/** A whole number ≥ `min`. */
export function count(
  value: unknown,
  path: Path,
  problems: Problems,
  min = 0,
): number | undefined {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    problems.add(path, `expected a whole number of at least ${min}, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

export function boolean(value: unknown, path: Path, problems: Problems): boolean | undefined {
  if (typeof value !== "boolean") {
    problems.add(path, `expected true or false, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

/** Bytes: a number, or `500M`, `20G`, `1.5T` (powers of 1024; `MiB`/`MB` spellings too). */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) return undefined;
  const power = " KMGT".indexOf(match[2].toUpperCase() || " ");
  const bytes = Math.floor(Number(match[1]) * 1024 ** power);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export function size(value: unknown, path: Path, problems: Problems): number | undefined {
  const bytes = typeof value === "number"
    ? (Number.isSafeInteger(value) && value >= 0 ? value : undefined)
    : typeof value === "string"
    ? parseSize(value)
    : undefined;
  if (bytes === undefined) {
    problems.add(path, `expected a size such as 500M, 20G or 1T, got ${describe(value)}`);
  }
  return bytes;
}

/** `text` as a URL if it is an http:// or https:// one. */
export function httpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text);
    return /^https?:$/.test(url.protocol) ? url : undefined;
  } catch {
    return undefined;
  }
}
