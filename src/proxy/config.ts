// Owns the upstream registries a mirror serves: the `--proxy-config` JSON file and `--proxy NAME=URL`,
// checked into plain Upstream values with one-line errors that name the field (issue 13).

import { parseDuration } from "../duration.ts";
import { isName } from "../grammar.ts";
import { httpUrl, isObject } from "../fields.ts";

/** One upstream registry, as the proxy store and the name routing use it. */
export interface Upstream {
  name: string;
  /** Its origin, e.g. `https://registry-1.docker.io` (the API lives under `/v2/`). */
  url: string;
  /**
   * The local path its repositories live under (`dockerhub` → `/v2/dockerhub/library/nginx`);
   * every proxied name, however a client reached it, is stored and authorized under it.
   */
  prefix: string;
  /** Registry hosts it answers for with containerd's `ns=` (lowercase). */
  namespaces: string[];
  /** How long a tag is served without asking the upstream again (ms). */
  ttl: number;
  username?: string;
  password?: string;
  /** Answers names that match no local repository (distribution's single-upstream behaviour). */
  default: boolean;
  /** Docker Hub: an unqualified name (`nginx`) means `library/nginx`. */
  dockerHub: boolean;
}

export const DEFAULT_TTL = 5 * 60 * 1000;

/** Hosts that are Docker Hub; its API answers on the last. */
const DOCKER_HUB_HOSTS = ["docker.io", "index.docker.io", "registry-1.docker.io"];
const DOCKER_HUB_API = "https://registry-1.docker.io";

const KEYS = [
  "name",
  "url",
  "prefix",
  "namespaces",
  "ttl",
  "username",
  "password",
  "passwordFile",
  "default",
] as const;

/** What loading needs from outside: files (passwordFile) and the environment (`${VAR}`). */
export interface LoadDeps {
  readTextFile(path: string): Promise<string>;
  env: Record<string, string | undefined>;
}

/**
 * The upstreams of the config file's `upstreams:` section, `--proxy-config FILE` and every
 * `--proxy NAME=URL`, checked together (names, prefixes, namespaces unique; one default at most).
 * Throws an Error of one line naming the field.
 */
export async function loadUpstreams(
  settings: { proxyConfig?: string; proxy: string[]; sections?: { upstreams?: UpstreamEntry[] } },
  deps: LoadDeps,
): Promise<Upstream[]> {
  const upstreams: Upstream[] = [];
  const section = settings.sections?.upstreams;
  if (section) upstreams.push(...await resolveUpstreams(section, deps));
  if (settings.proxyConfig !== undefined) {
    const file = settings.proxyConfig;
    let text: string;
    try {
      text = await deps.readTextFile(file);
    } catch (error) {
      const reason = error instanceof Deno.errors.NotFound
        ? "no such file"
        : (error as Error).message;
      throw new Error(`proxy config ${file}: ${reason}`);
    }
    try {
      upstreams.push(...await parseProxyConfig(text, deps));
    } catch (error) {
      throw new Error(`proxy config ${file}: ${(error as Error).message}`);
    }
  }
  for (const flag of settings.proxy) {
    try {
      upstreams.push(parseProxyFlag(flag));
    } catch (error) {
      throw new Error(`--proxy ${flag}: ${(error as Error).message}`);
    }
  }
  checkTogether(upstreams);
  return upstreams;
}

/** `NAME=URL`: an upstream under the prefix NAME; credentials may ride in the URL (`user:pass@`). */
export function parseProxyFlag(text: string): Upstream {
  const at = text.indexOf("=");
  if (at <= 0) throw new Error("expected NAME=URL");
  const name = text.slice(0, at);
  const url = new URL(checkUrl(text.slice(at + 1), "URL"));
  const username = decodeURIComponent(url.username) || undefined;
  const password = decodeURIComponent(url.password) || undefined;
  url.username = "";
  url.password = "";
  return upstream({ name, url: url.origin, username, password }, "");
}

/** The JSON file: `{"upstreams":[{"name","url","prefix"?,"namespaces"?,"ttl"?,…}]}`. */
export async function parseProxyConfig(text: string, deps: LoadDeps): Promise<Upstream[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (!isObject(raw)) throw new Error('expected a JSON object with "upstreams"');
  for (const key of Object.keys(raw)) {
    if (key !== "upstreams") throw new Error(`unknown field "${key}" (expected "upstreams")`);
  }
  return await resolveUpstreams(checkUpstreamEntries(raw.upstreams), deps);
}

/** An upstream as configured, checked in every field; its password may still be in a file. */
export interface UpstreamEntry {
  raw: RawUpstream;
  passwordFile?: string;
  /** Where it stands, for errors: `upstreams[0]`. */
  where: string;
}

/**
 * A list of upstreams (the JSON file's `"upstreams"`, or the config file's `upstreams:` section,
 * with the same keys), checked in every field; a `passwordFile` is read later, at load
 * (`resolveUpstreams`). Throws an Error naming the field.
 */
export function checkUpstreamEntries(list: unknown): UpstreamEntry[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(`"upstreams" must be a non-empty list`);
  }
  return list.map((entry, index) => {
    const where = `upstreams[${index}]`;
    if (!isObject(entry)) throw new Error(`${where} must be an object`);
    for (const key of Object.keys(entry)) {
      if (!(KEYS as readonly string[]).includes(key)) {
        throw new Error(`${where}: unknown field "${key}"`);
      }
    }
    const field = (key: (typeof KEYS)[number]) => `${where}.${key}`;
    const string = (key: (typeof KEYS)[number]) => {
      const value = entry[key];
      if (value !== undefined && typeof value !== "string") {
        throw new Error(`${field(key)} must be a string`);
      }
      return value as string | undefined;
    };
    const password = string("password");
    const passwordFile = string("passwordFile");
    if (password !== undefined && passwordFile !== undefined) {
      throw new Error(`${where}: give "password" or "passwordFile", not both`);
    }
    const namespaces = entry.namespaces;
    if (
      namespaces !== undefined &&
      (!Array.isArray(namespaces) || !namespaces.every((n) => typeof n === "string"))
    ) {
      throw new Error(`${field("namespaces")} must be a list of host names`);
    }
    const isDefault = entry.default;
    if (isDefault !== undefined && typeof isDefault !== "boolean") {
      throw new Error(`${field("default")} must be true or false`);
    }
    const name = string("name");
    const url = string("url");
    if (name === undefined) throw new Error(`${field("name")} is required`);
    if (url === undefined) throw new Error(`${field("url")} is required`);
    const raw: RawUpstream = {
      name,
      url,
      prefix: string("prefix"),
      namespaces: namespaces as string[] | undefined,
      ttl: string("ttl"),
      username: string("username"),
      password,
      default: isDefault,
    };
    // Every other field is checked now; a password file's content stands in for its name.
    upstream({ ...raw, password: passwordFile ?? password }, `${where}.`);
    return { raw, passwordFile, where };
  });
}

/** The upstreams of checked entries: password files read, `${VAR}` in passwords expanded. */
export async function resolveUpstreams(
  entries: UpstreamEntry[],
  deps: LoadDeps,
): Promise<Upstream[]> {
  const upstreams: Upstream[] = [];
  for (const { raw, passwordFile, where } of entries) {
    let password = raw.password;
    if (passwordFile !== undefined) {
      try {
        password = (await deps.readTextFile(passwordFile)).replace(/\r?\n$/, "");
      } catch (error) {
        const reason = error instanceof Deno.errors.NotFound
          ? "no such file"
          : (error as Error).message;
        throw new Error(`${where}.passwordFile ${passwordFile}: ${reason}`);
      }
    } else if (password !== undefined) {
      password = expandEnv(password, deps.env, `${where}.password`);
    }
    upstreams.push(upstream({ ...raw, password }, `${where}.`));
  }
  return upstreams;
}

interface RawUpstream {
  name: string;
  url: string;
  prefix?: string;
  namespaces?: string[];
  ttl?: string;
  username?: string;
  password?: string;
  default?: boolean;
}

/** One checked upstream; `where` prefixes field names in errors (`upstreams[0].`). */
function upstream(raw: RawUpstream, where: string): Upstream {
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(raw.name)) {
    throw new Error(`${where}name: "${raw.name}" must be lowercase letters, digits, . _ -`);
  }
  const url = new URL(checkUrl(raw.url, `${where}url`));
  if (url.username || url.password) {
    throw new Error(`${where}url: put credentials in "username" and "password"`);
  }
  const host = url.host.toLowerCase();
  const dockerHub = DOCKER_HUB_HOSTS.includes(url.hostname) ||
    (raw.namespaces ?? []).some((ns) => ns.toLowerCase() === "docker.io");
  const prefix = raw.prefix ?? raw.name;
  if (!isName(prefix)) {
    throw new Error(`${where}prefix: "${prefix}" is not a repository name (e.g. dockerhub)`);
  }
  const namespaces = (raw.namespaces ?? (
    DOCKER_HUB_HOSTS.includes(url.hostname) ? DOCKER_HUB_HOSTS : [host]
  )).map((ns) => ns.toLowerCase());
  for (const ns of namespaces) {
    if (!/^[a-z0-9.-]+(?::\d{1,5})?$/.test(ns)) {
      throw new Error(`${where}namespaces: "${ns}" is not a host name (e.g. docker.io)`);
    }
  }
  const ttl = raw.ttl === undefined ? DEFAULT_TTL : parseDuration(raw.ttl);
  if (ttl === undefined) {
    throw new Error(`${where}ttl: "${raw.ttl}" is not a duration (e.g. 30s, 5m, 1h)`);
  }
  if ((raw.username === undefined) !== (raw.password === undefined)) {
    throw new Error(`${where}username: "username" and a password go together`);
  }
  return {
    name: raw.name,
    // Docker Hub's own names (docker.io, index.docker.io) do not serve the API.
    url: DOCKER_HUB_HOSTS.includes(url.hostname) && url.protocol === "https:"
      ? DOCKER_HUB_API
      : url.origin,
    prefix,
    namespaces,
    ttl,
    ...(raw.username !== undefined && { username: raw.username, password: raw.password }),
    default: raw.default ?? false,
    dockerHub,
  };
}

function checkUrl(text: string, field: string): string {
  const url = httpUrl(text);
  if (!url || (url.pathname !== "/" && url.pathname !== "")) {
    throw new Error(`${field}: "${text}" must be http(s)://host[:port] (the registry's origin)`);
  }
  if (url.search || url.hash) throw new Error(`${field}: "${text}" must have no query`);
  return text;
}

/** Names, prefixes and namespaces are unique; no prefix lies inside another; one default. */
function checkTogether(upstreams: Upstream[]): void {
  const seen = (what: string, values: string[]) => {
    const found = new Set<string>();
    for (const value of values) {
      if (found.has(value)) throw new Error(`two upstreams share the ${what} "${value}"`);
      found.add(value);
    }
  };
  seen("name", upstreams.map((u) => u.name));
  seen("prefix", upstreams.map((u) => u.prefix));
  seen("namespace", upstreams.flatMap((u) => u.namespaces));
  for (const a of upstreams) {
    for (const b of upstreams) {
      if (a !== b && a.prefix.startsWith(`${b.prefix}/`)) {
        throw new Error(
          `the prefix "${a.prefix}" of ${a.name} lies inside "${b.prefix}" of ${b.name}`,
        );
      }
    }
  }
  const defaults = upstreams.filter((u) => u.default);
  if (defaults.length > 1) {
    throw new Error(`only one upstream may be the default (${defaults.map((u) => u.name)})`);
  }
}

/** `${NAME}` in a password is the environment variable NAME (so no secret sits in the file). */
function expandEnv(
  value: string,
  env: Record<string, string | undefined>,
  field: string,
): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const found = env[name];
    if (found === undefined) throw new Error(`${field}: the environment variable ${name} is unset`);
    return found;
  });
}
