// Owns applying a changed configuration without a restart: all of what can change, or none of it.
// main.ts triggers it on SIGHUP; each reloadable feature is a part that prepares, then switches.

/*
 * A reload reads the settings again (flags and environment as at start, the config file anew),
 * then asks every part to prepare: read its files, compile its rules, and hand back a switch.
 * Only when every part has prepared are the switches thrown, one after the other with no await
 * in between, so no request sees a mix of old and new settings, and none fails for the swap
 * (requests read the settings in force once, where they start). A bad file, or a part that
 * cannot prepare, leaves the settings in force as they were and is logged. Settings that
 * need a restart (the port, the storage, the auth mode…) are named in the log and left alone.
 */

import type { Config } from "../config.ts";
import { log } from "../log.ts";
import { SECTIONS } from "./sections.ts";

/** One feature that a reload changes. */
export interface ReloadPart {
  name: string;
  /** Reads and checks what `config` asks for; resolves to the switch that puts it in force. */
  prepare(config: Config): Promise<() => void>;
}

export interface ReloadOutcome {
  ok: boolean;
  /** Why the new settings were refused (one line). */
  error?: string;
  /** Settings that changed but need a restart (flag and section names). */
  restartNeeded: string[];
  durationMs: number;
}

/** The Config fields a reload applies; every other change waits for a restart. */
const RELOADED_FIELDS = new Set<keyof Config>([
  "readOnly",
  "accessPolicy",
  "configFile",
  "notify",
  "notifyConfig",
]);
const RELOADED_SECTIONS = new Set<string>(SECTIONS.filter((s) => s.reloadable).map((s) => s.key));

export function createReloader(options: {
  /** The settings as the command line, environment and config file give them now. */
  load: () => Promise<Config>;
  parts: ReloadPart[];
  /** The settings the server started with. */
  initial: Config;
}): () => Promise<ReloadOutcome> {
  let inForce = options.initial;
  let queue: Promise<unknown> = Promise.resolve();
  const reload = async (): Promise<ReloadOutcome> => {
    const t0 = performance.now();
    const took = () => Math.round((performance.now() - t0) * 100) / 100;
    let switches: (() => void)[];
    let next: Config;
    try {
      next = await options.load();
      switches = await Promise.all(options.parts.map((part) => part.prepare(next)));
    } catch (error) {
      const message = (error as Error).message.split("\n")[0];
      log.error("config not reloaded, the settings in force stay", {
        "error.message": message,
        "duration_ms": took(),
      });
      return { ok: false, error: message, restartNeeded: [], durationMs: took() };
    }
    for (const flip of switches) flip();
    const restartNeeded = needsRestart(inForce, next);
    inForce = keepRunning(inForce, next);
    const fields = {
      "config.read_only": next.readOnly,
      "config.restart_needed": restartNeeded.join(","),
      "duration_ms": took(),
    };
    if (restartNeeded.length > 0) log.warn("config reloaded; some settings need a restart", fields);
    else log.info("config reloaded", fields);
    return { ok: true, restartNeeded, durationMs: took() };
  };
  return () => {
    const run = queue.then(reload);
    queue = run.catch(() => {});
    return run;
  };
}

/** The settings in force after a reload: the new reloadable ones, the running rest. */
function keepRunning(running: Config, next: Config): Config {
  const merged = { ...running } as unknown as Record<string, unknown>;
  for (const field of RELOADED_FIELDS) merged[field] = next[field];
  const sections = { ...running.sections } as Record<string, unknown>;
  for (const key of RELOADED_SECTIONS) {
    sections[key] = (next.sections as Record<string, unknown>)[key];
  }
  merged.sections = sections;
  return merged as unknown as Config;
}

/** Names (as flags and sections) of the settings that differ and that only a restart applies. */
export function needsRestart(running: Config, next: Config): string[] {
  const names: string[] = [];
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]) as Set<keyof Config>;
  for (const key of keys) {
    if (RELOADED_FIELDS.has(key) || key === "sections") continue;
    if (stable(running[key]) !== stable(next[key])) names.push(flagName(key));
  }
  const sections = new Set([...Object.keys(running.sections), ...Object.keys(next.sections)]);
  for (const key of sections) {
    if (RELOADED_SECTIONS.has(key)) continue;
    const get = (config: Config) => (config.sections as Record<string, unknown>)[key];
    if (stable(get(running)) !== stable(get(next))) names.push(key);
  }
  return names.sort();
}

/** `dataDir` → `data-dir`; the few fields named otherwise than their flag. */
function flagName(key: string): string {
  if (key === "deleteEnabled") return "no-delete";
  if (key === "s3") return "s3-*";
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** A comparable text of a value (rules hold RegExps, Maps and Sets). */
function stable(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v) => {
    if (v instanceof RegExp) return `/${v.source}/${v.flags}`;
    if (v instanceof Map) return [...v];
    if (v instanceof Set) return [...v];
    return v;
  });
}
