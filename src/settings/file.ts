// Owns reading the config file: YAML (JSON is YAML too) into flag values and parsed sections.
// Every problem is one line naming the file, line and column, and the key (`config check`).

import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { type FileSettings, type Flag, FLAGS, inFile } from "../config.ts";
import { createProblems, describe, type Path } from "../fields.ts";
import { findSection, SECTION_KEYS, type Sections } from "./sections.ts";

export interface ReadFile {
  settings: FileSettings;
  /** `FILE:LINE:COL: message`, in file order; empty when the file is good. */
  problems: string[];
}

const FILE_FLAGS = new Map(FLAGS.filter(inFile).map((flag) => [flag.name, flag]));

/** Parses a config file's text; `path` is only for messages. */
export function readConfigFile(path: string, text: string): ReadFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${line}:${col}`;
  };
  const found: { offset: number; line: string }[] = [];
  const problem = (offset: number, message: string) =>
    found.push({ offset, line: `${path}:${at(offset)}: ${message}` });
  const settings: FileSettings = { path, flags: {}, sections: {} };
  const done = () => ({
    settings,
    problems: found.sort((a, b) => a.offset - b.offset).map((p) => p.line),
  });

  for (const error of doc.errors) {
    problem(error.pos[0], error.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, ""));
  }
  if (doc.errors.length > 0) return done();
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return done(); // empty file
  if (!isMap(root)) {
    problem(root.range?.[0] ?? 0, `expected a mapping of settings (key: value), got ${kind(root)}`);
    return done();
  }
  for (const pair of root.items) {
    const keyNode = pair.key as Node | null;
    const key = isScalar(keyNode) ? keyNode.value : undefined;
    const keyOffset = keyNode?.range?.[0] ?? 0;
    if (typeof key !== "string") {
      problem(keyOffset, "keys must be strings");
      continue;
    }
    const valueNode = pair.value as Node | null;
    const value = valueNode?.toJS(doc) ?? null;
    const valueOffset = valueNode?.range?.[0] ?? keyOffset;
    const flag = FILE_FLAGS.get(key);
    const section = findSection(key);
    const asFlag = flag ? flagValue(flag, value) : undefined;
    if (asFlag !== undefined && typeof asFlag !== "object") {
      settings.flags[key] = { value: asFlag, at: at(valueOffset) };
      continue;
    }
    if (section) {
      const problems = createProblems();
      const parsed = section.parse(value, problems);
      for (const { path: where, message, key: atKey } of problems.list) {
        problem(
          locate(valueNode, where, atKey) ?? valueOffset,
          `${key}${pathText(where)}: ${message}`,
        );
      }
      if (problems.list.length === 0 && parsed !== undefined) {
        (settings.sections as Record<string, unknown>)[key] = parsed;
      }
      continue;
    }
    if (typeof asFlag === "object") {
      problem(valueOffset, `${key}: ${asFlag.error}`);
      continue;
    }
    const known = [...FILE_FLAGS.keys(), ...SECTION_KEYS.filter((k) => !FILE_FLAGS.has(k))];
    const near = known.find((name) => similar(name, key));
    problem(
      keyOffset,
      `unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}; see --help for the keys`,
    );
  }
  return done();
}

/** A flag's value as the command line gives it, or why the file's value is not one. */
function flagValue(flag: Flag, value: unknown): string | boolean | { error: string } {
  if (!flag.value) {
    return typeof value === "boolean"
      ? value
      : { error: `expected true or false, got ${describe(value)}` };
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  // A repeatable flag takes a list (the command line's repeats, the environment's spaces).
  if (flag.multiple && Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return value.join(" ");
  }
  return { error: `expected ${flag.value}, got ${describe(value)}` };
}

/** The offset of the node a problem's path names (its key for a key problem). */
function locate(node: Node | null, path: Path, atKey = false): number | undefined {
  let current: unknown = node;
  let offset = node?.range?.[0];
  for (const [i, step] of path.entries()) {
    if (isMap(current)) {
      const pair = current.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === step);
      if (!pair) return offset;
      const last = i === path.length - 1;
      const keyNode = pair.key as Node;
      if (last && atKey) return keyNode.range?.[0] ?? offset;
      current = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
    } else if (isSeq(current) && typeof step === "number") {
      const item = current.items[step] as Node | undefined;
      if (!item) return offset;
      current = item;
      offset = item.range?.[0] ?? offset;
    } else return offset;
  }
  return offset;
}

/** ` #1.keep-last` (the first rule's key) for a path inside a section. */
function pathText(path: Path): string {
  return path.map((step) => typeof step === "number" ? ` #${step + 1}` : `.${step}`).join("");
}

function kind(node: Node): string {
  return isSeq(node) ? "a list" : isScalar(node) ? describe(node.value) : "something else";
}

/** A likely misspelling: one edit apart, or the same once dashes and underscores go. */
function similar(a: string, b: string): boolean {
  const plain = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  if (plain(a) === plain(b)) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const swapped = a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
  return swapped || a.slice(i + 1) === b.slice(i + 1) || a.slice(i + 1) === b.slice(i) ||
    a.slice(i) === b.slice(i + 1);
}

export type { Sections };
