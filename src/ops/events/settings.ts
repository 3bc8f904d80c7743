// Owns webhook endpoint settings: `--notify URL` and the `--notify-config FILE` JSON, checked at start.
// Implements distribution's notification endpoint settings (url, headers, timeout, backoff, ignore).

import { createHash } from "node:crypto";
import { parseDuration } from "../../duration.ts";
import { httpUrl, isObject } from "../../fields.ts";
import { globToRegExp } from "../../glob.ts";

export type EventAction = "push" | "pull" | "delete" | "mount";
export const EVENT_ACTIONS: readonly EventAction[] = ["push", "pull", "delete", "mount"];

/** Which events an endpoint gets: all of them when a list is absent. */
export interface EventFilter {
  actions?: Set<string>;
  /** Matched against the target's media type; events without one (deletes) pass. */
  mediaTypes?: Set<string>;
  repositories?: RegExp[];
}

export interface EndpointSettings {
  /** The metrics label and the outbox folder (`_events/<name>`): keep it when the URL changes. */
  name: string;
  url: string;
  headers: Record<string, string>;
  /** A delivery attempt not answered within this (ms) has failed. */
  timeout: number;
  /** The wait after a first failure (ms), doubled after each next one up to `maxBackoff`. */
  backoff: number;
  maxBackoff: number;
  /** Events per request (the envelope's `events[]`); 1 as distribution sends them. */
  batch: number;
  include: EventFilter;
  ignore: EventFilter;
}

export interface NotifySettings {
  endpoints: EndpointSettings[];
  /** Undelivered events an endpoint's outbox keeps; past it the oldest are dropped. */
  maxPending: number;
}

export const DEFAULTS = {
  timeout: 5_000,
  backoff: 1_000,
  maxBackoff: 300_000,
  batch: 1,
  maxPending: 100_000,
} as const;

const MAX_BATCH = 100;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENDPOINT_KEYS = [
  "name",
  "url",
  "headers",
  "timeout",
  "backoff",
  "maxBackoff",
  "batch",
  "actions",
  "mediaTypes",
  "repositories",
  "ignore",
];
const FILTER_KEYS = ["actions", "mediaTypes", "repositories"];

/** An endpoint from `--notify URL`: every event, default settings, named after its URL. */
export function endpointForUrl(url: string): EndpointSettings {
  checkUrl(url, "--notify");
  return {
    name: `url-${createHash("sha256").update(url).digest("hex").slice(0, 12)}`,
    url,
    headers: {},
    timeout: DEFAULTS.timeout,
    backoff: DEFAULTS.backoff,
    maxBackoff: DEFAULTS.maxBackoff,
    batch: DEFAULTS.batch,
    include: {},
    ignore: {},
  };
}

/** A `--notify-config` file's content, or the config file's `notifications:` section. */
export interface NotifyValue {
  endpoints: EndpointSettings[];
  maxPending?: number;
}

/** Checks `{"endpoints": [...], "maxPending"?}`; throws an Error naming `where` and the key. */
export function notifyValue(value: unknown, where: string): NotifyValue {
  const root = object(value, where);
  known(root, ["endpoints", "maxPending"], where);
  const out: NotifyValue = { endpoints: [] };
  if (root.maxPending !== undefined) {
    out.maxPending = positiveInteger(root.maxPending, `${where}: "maxPending"`);
    if (out.maxPending < MAX_BATCH) {
      throw new Error(`${where}: "maxPending" must be at least ${MAX_BATCH}`);
    }
  }
  if (root.endpoints !== undefined) {
    if (!Array.isArray(root.endpoints)) throw new Error(`${where}: "endpoints" must be a list`);
    out.endpoints = root.endpoints.map((entry, i) =>
      parseEndpoint(entry, `${where}: endpoints[${i}]`)
    );
  }
  return out;
}

/**
 * The endpoints of `--notify` URLs, of a `--notify-config` file's text and of the config file's
 * `notifications:` section, together. Throws an Error whose message names the file and the key.
 */
export function notifySettings(
  urls: string[],
  config?: { path: string; text: string },
  section?: NotifyValue,
): NotifySettings {
  const values: NotifyValue[] = [{ endpoints: urls.map(endpointForUrl) }];
  if (config) {
    let value: unknown;
    try {
      value = JSON.parse(config.text);
    } catch (error) {
      throw new Error(`${config.path}: not JSON: ${(error as Error).message}`);
    }
    values.push(notifyValue(value, config.path));
  }
  if (section) values.push(section);
  const endpoints = values.flatMap((value) => value.endpoints);
  const names = new Set<string>();
  for (const endpoint of endpoints) {
    if (names.has(endpoint.name)) {
      throw new Error(`two notification endpoints named ${endpoint.name}`);
    }
    names.add(endpoint.name);
  }
  const bounds = values.map((value) => value.maxPending).filter((n) => n !== undefined);
  return { endpoints, maxPending: bounds.at(-1) ?? DEFAULTS.maxPending };
}

function parseEndpoint(value: unknown, where: string): EndpointSettings {
  const entry = object(value, where);
  known(entry, ENDPOINT_KEYS, where);
  const url = string(entry.url, `${where} "url"`);
  checkUrl(url, `${where} "url"`);
  const fallback = endpointForUrl(url);
  const name = entry.name === undefined ? fallback.name : string(entry.name, `${where} "name"`);
  if (!NAME.test(name)) {
    throw new Error(
      `${where} "name": ${JSON.stringify(name)} (1-64 of A-Z a-z 0-9 . _ -, not first . _ -)`,
    );
  }
  const duration = (key: string, fallbackMs: number) => {
    if (entry[key] === undefined) return fallbackMs;
    const ms = parseDuration(string(entry[key], `${where} "${key}"`));
    if (ms === undefined || ms <= 0) {
      throw new Error(`${where} "${key}": expected a duration such as 500ms, 5s, 1m`);
    }
    return ms;
  };
  const batch = entry.batch === undefined
    ? DEFAULTS.batch
    : positiveInteger(entry.batch, `${where} "batch"`);
  if (batch > MAX_BATCH) throw new Error(`${where} "batch": at most ${MAX_BATCH}`);
  const backoff = duration("backoff", DEFAULTS.backoff);
  return {
    name,
    url,
    headers: headers(entry.headers, `${where} "headers"`),
    timeout: duration("timeout", DEFAULTS.timeout),
    backoff,
    maxBackoff: Math.max(backoff, duration("maxBackoff", DEFAULTS.maxBackoff)),
    batch,
    include: filter(entry, `${where}`),
    ignore: entry.ignore === undefined
      ? {}
      : filter(object(entry.ignore, `${where} "ignore"`), `${where} "ignore"`, true),
  };
}

function filter(value: Record<string, unknown>, where: string, strict = false): EventFilter {
  if (strict) known(value, FILTER_KEYS, where);
  const out: EventFilter = {};
  if (value.actions !== undefined) {
    const actions = strings(value.actions, `${where} "actions"`);
    for (const action of actions) {
      if (!EVENT_ACTIONS.includes(action as EventAction)) {
        throw new Error(
          `${where} "actions": ${JSON.stringify(action)} (expected ${EVENT_ACTIONS.join(", ")})`,
        );
      }
    }
    out.actions = new Set(actions);
  }
  if (value.mediaTypes !== undefined) {
    out.mediaTypes = new Set(strings(value.mediaTypes, `${where} "mediaTypes"`));
  }
  if (value.repositories !== undefined) {
    out.repositories = strings(value.repositories, `${where} "repositories"`).map(globToRegExp);
  }
  return out;
}

/** Does an event pass an endpoint's filters (included and not ignored)? */
export function wants(
  endpoint: Pick<EndpointSettings, "include" | "ignore">,
  event: { action: string; target: { mediaType?: string; repository?: string } },
): boolean {
  const matches = (f: EventFilter, empty: boolean) => {
    const { mediaType, repository } = event.target;
    const action = f.actions ? f.actions.has(event.action) : empty;
    const type = f.mediaTypes
      ? mediaType === undefined ? empty : f.mediaTypes.has(mediaType)
      : empty;
    const repo = f.repositories
      ? repository !== undefined && f.repositories.some((glob) => glob.test(repository))
      : empty;
    return { action, type, repo };
  };
  const include = matches(endpoint.include, true);
  if (!include.action || !include.type || !include.repo) return false;
  const ignore = matches(endpoint.ignore, false);
  return !ignore.action && !ignore.type && !ignore.repo;
}

function checkUrl(url: string, where: string): void {
  if (!httpUrl(url)) {
    throw new Error(`${where}: invalid URL ${JSON.stringify(url)} (expected http:// or https://)`);
  }
}

function headers(value: unknown, where: string): Record<string, string> {
  if (value === undefined) return {};
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(object(value, where))) {
    // distribution writes each header as a list of values.
    const values = Array.isArray(raw)
      ? strings(raw, `${where} ${key}`)
      : [string(raw, `${where} ${key}`)];
    try {
      new Headers({ [key]: values.join(", ") });
    } catch {
      throw new Error(`${where}: invalid header ${JSON.stringify(key)}`);
    }
    out[key] = values.join(", ");
  }
  return out;
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (!isObject(value)) throw new Error(`${where}: expected an object`);
  return value;
}

function known(value: Record<string, unknown>, keys: string[], where: string): void {
  const unknown = Object.keys(value).find((key) => !keys.includes(key));
  if (unknown !== undefined) throw new Error(`${where}: unknown key ${JSON.stringify(unknown)}`);
}

function string(value: unknown, where: string): string {
  if (typeof value !== "string" || value === "") {
    throw new Error(`${where}: expected a non-empty string`);
  }
  return value;
}

function strings(value: unknown, where: string): string[] {
  if (!Array.isArray(value)) throw new Error(`${where}: expected a list of strings`);
  return value.map((item) => string(item, where));
}

function positiveInteger(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${where}: expected a positive integer`);
  }
  return value;
}
