// Owns the command line: flags with node:util parseArgs (strict), each also read from REGISTRY_* and
// from the config file; flag > environment > file > default. The result is a Config or one error.

import { parseArgs } from "node:util";
import { parseDuration } from "./duration.ts";
import { parseSize } from "./fields.ts";
import { parseCidrs } from "./forwarded.ts";
import type { S3Options } from "./storage/s3/driver.ts";
import { SECTIONS, type Sections } from "./settings/sections.ts";
import { parseProxyFlag } from "./proxy/config.ts";

export const VERSION = "0.1.0";

export interface Config {
  port: number;
  host: string;
  verbose: boolean;
  storage: "fs" | "memory" | "s3";
  dataDir: string;
  deleteEnabled: boolean;
  /** Serve the web UI at / (src/ui/); --no-ui turns it off. */
  ui: boolean;
  /** Online GC (src/gc.ts): ms between passes, 0 = off; grace and upload TTL in ms. */
  gcInterval: number;
  gcUntagged: boolean;
  gcGrace: number;
  uploadTtl: number;
  /** S3 storage settings, present when storage is "s3". */
  s3?: S3Options;
  /** Blob GETs of at least `minSize` bytes answered 307 to a presigned S3 URL (--s3-redirect). */
  s3Redirect?: { minSize: number };
  /** Several instances share cache, locks and GC pins through Redis (--redis). */
  redis?: { url: string; lease: number };
  /** Auth (src/auth): none, htpasswd Basic, or Docker tokens; file paths as given. */
  auth: "none" | "basic" | "token";
  htpasswd?: string;
  accessPolicy?: string;
  tokenKey?: string;
  tokenRealm?: string;
  tokenIssuer?: string;
  tokenService?: string;
  tokenJwks?: string;
  tokenCert?: string;
  /** HTTPS when both are set (PEM files). */
  tlsCert?: string;
  tlsKey?: string;
  /** CIDR ranges of reverse proxies whose X-Forwarded-* headers are believed. */
  trustedProxies: string[];
  /** Connection limits (src/listen.ts): timeouts in ms, 0 = none; the cap, absent = from the fd limit. */
  headerTimeout: number;
  idleTimeout: number;
  bodyTimeout: number;
  maxConnections?: number;
  /** Writes under /v2/ answer 405 and GC pauses (src/policy); SIGHUP may change it. */
  readOnly: boolean;
  /** The config file (--config), read again by each reload. */
  configFile?: string;
  /** The config file's sections, parsed (src/settings/sections.ts); empty without a file. */
  sections: Sections;
  /** Operations (src/ops): metrics on or off, their own listener, webhooks, audit log, tracing. */
  metrics: boolean;
  metricsAddr?: { hostname: string; port: number };
  notify: string[];
  notifyConfig?: string;
  auditLog?: string;
  traceparent: boolean;
  /** Pull-through cache (src/proxy): the upstreams file and `NAME=URL` entries, as given. */
  proxyConfig?: string;
  proxy: string[];
  /** Cached manifests not pulled for this long (ms) are dropped by the GC. */
  proxyMaxAge?: number;
  /** Bytes the cache may hold; the GC drops the least recently pulled beyond. */
  proxyMaxBytes?: number;
}

/**
 * What a config file sets (src/settings/file.ts reads it): flag values as the command line
 * would give them, where each stands (`line:col`), and the parsed sections.
 */
export interface FileSettings {
  path: string;
  flags: Record<string, { value: string | boolean; at: string }>;
  sections: Sections;
}

export type ParsedCommand =
  | { kind: "serve"; config: Config }
  | { kind: "gc"; config: Config; dryRun: boolean }
  | { kind: "fsck"; config: Config; repair: boolean }
  | { kind: "check"; config: Config }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "error"; message: string };

/** A boolean flag's value, or an env value spelled 1/true/yes/on (any case). */
const isOn = (value: unknown) =>
  value === true || (typeof value === "string" && /^(1|true|yes|on)$/i.test(value));

/** One command-line flag: its name, value, help line, and where else it may come from. */
export interface Flag {
  name: string;
  /** The value's placeholder in the usage (`N`, `DIR`); absent for a boolean flag. */
  value?: string;
  help: string;
  /** The environment variable (default `REGISTRY_<NAME>`), or false when there is none. */
  env?: string | false;
  /** Only with this subcommand. */
  command?: keyof typeof COMMANDS;
  /** False: not a config file key (the file itself, one-off and subcommand flags). */
  file?: false;
  /** SIGHUP applies a change of it from the config file without a restart. */
  reload?: true;
  /** May be given several times (its environment variable: values separated by spaces). */
  multiple?: boolean;
}

/**
 * Every flag, in usage order: the usage text, the parser's options and the environment names
 * all come from here, so a new flag is one entry (tests/config_test.ts holds the README to it).
 */
export const FLAGS: readonly Flag[] = [
  { name: "port", value: "N", help: "port to listen on (default 5000; 0: any free port)" },
  { name: "host", value: "ADDR", help: "address to listen on (default 0.0.0.0)" },
  { name: "verbose", help: "debug logs" },
  { name: "storage", value: "fs|memory|s3", help: "storage driver (default fs)" },
  { name: "data-dir", value: "DIR", help: "where fs storage keeps its data (default ./data)" },
  { name: "no-delete", help: "refuse every DELETE with 405 UNSUPPORTED" },
  { name: "no-ui", help: "do not serve the web interface at / (the API stays)" },
  { name: "config", value: "FILE", help: "YAML (or JSON) settings and policies", file: false },
  { name: "read-only", help: "refuse every write under /v2/ with 405, pause GC", reload: true },
  {
    name: "s3-endpoint",
    value: "URL",
    help: "S3 endpoint (default https://s3.<region>.amazonaws.com)",
  },
  { name: "s3-bucket", value: "NAME", help: "bucket for --storage s3 (must exist)" },
  { name: "s3-region", value: "REGION", help: "signing region (default us-east-1)" },
  { name: "s3-prefix", value: "PATH", help: "key prefix inside the bucket (default none)" },
  { name: "s3-path-style", help: "https://host/bucket/key URLs (default with --s3-endpoint)" },
  { name: "s3-virtual-host", help: "https://bucket.host/key URLs (default for AWS)", env: false },
  { name: "s3-access-key", value: "ID", help: "access key (or AWS_ACCESS_KEY_ID)" },
  { name: "s3-secret-key", value: "KEY", help: "secret key (or AWS_SECRET_ACCESS_KEY)" },
  {
    name: "s3-redirect",
    help: "blob GETs answer 307 to a presigned S3 URL (default on for AWS only)",
  },
  {
    name: "s3-redirect-min",
    value: "N",
    help: "blobs smaller than N bytes are served directly (default 1M)",
  },
  {
    name: "redis",
    value: "URL",
    help: "share cache, locks and GC pins between instances (redis://…, rediss://…)",
  },
  {
    name: "redis-lease",
    value: "D",
    help: "a crashed instance's locks free after D (default 30s)",
  },
  {
    name: "auth",
    value: "none|basic|token",
    help: "auth mode (default: basic with --htpasswd, else none)",
  },
  { name: "htpasswd", value: "FILE", help: "users, bcrypt entries (htpasswd -B)" },
  {
    name: "access-policy",
    value: "FILE",
    help: "JSON rules: who may pull, push, delete where",
    reload: true,
  },
  { name: "token-key", value: "FILE", help: "PEM EC P-256 key signing built-in tokens" },
  { name: "token-realm", value: "URL", help: "external token server (with issuer, service, keys)" },
  { name: "token-issuer", value: "ISS", help: "token issuer (default simple-registry)" },
  { name: "token-service", value: "SVC", help: "token audience (default simple-registry)" },
  { name: "token-jwks", value: "FILE|URL", help: "external token server's keys (JWKS)" },
  { name: "token-cert", value: "FILE", help: "external token server's certificate (PEM)" },
  { name: "tls-cert", value: "FILE", help: "serve HTTPS with this certificate chain (PEM)" },
  { name: "tls-key", value: "FILE", help: "and this private key (PEM)" },
  {
    name: "trusted-proxies",
    value: "CIDR,…",
    help: "believe X-Forwarded-For/-Proto/-Host only from these peers",
  },
  { name: "gc-interval", value: "D", help: "online GC every D, e.g. 1h (default off)" },
  { name: "gc-untagged", help: "GC also manifests no tag, index or subject reaches" },
  { name: "gc-grace", value: "D", help: "GC spares anything younger (default 1h)" },
  { name: "upload-ttl", value: "D", help: "uploads idle longer are dropped (default 24h)" },
  { name: "proxy-config", value: "FILE", help: "mirror the upstream registries in this JSON file" },
  {
    name: "proxy",
    value: "NAME=URL",
    help: "mirror URL under the prefix NAME (repeatable)",
    multiple: true,
  },
  { name: "proxy-max-age", value: "D", help: "GC drops cached images not pulled for D" },
  { name: "proxy-max-bytes", value: "N", help: "GC keeps the cache under N bytes (e.g. 500G)" },
  {
    name: "header-timeout",
    value: "D",
    help: "close connections with no request head by D (default 30s)",
  },
  {
    name: "idle-timeout",
    value: "D",
    help: "close keep-alive connections idle for D (default 60s)",
  },
  {
    name: "body-timeout",
    value: "D",
    help: "cut request bodies that send nothing for D (default 60s)",
  },
  {
    name: "max-connections",
    value: "N",
    help: "connections at once (default: half the open-file limit, ≤ 4096)",
  },
  {
    name: "metrics-addr",
    value: "HOST:PORT",
    help: "serve /metrics and probes there, not on --port",
  },
  { name: "no-metrics", help: "no Prometheus metrics (nothing counted, /metrics is 404)" },
  {
    name: "notify",
    value: "URL",
    help: "send webhook events to URL (repeatable)",
    multiple: true,
  },
  {
    name: "notify-config",
    value: "FILE",
    help: "webhook endpoints: headers, timeout, backoff, filters (JSON)",
  },
  {
    name: "audit-log",
    value: "FILE",
    help: "append a JSON line per write or delete, with its user",
  },
  { name: "traceparent", help: "continue or start W3C traces; log and forward them" },
  {
    name: "dry-run",
    help: "gc: print what would go, delete nothing",
    env: false,
    command: "gc",
    file: false,
  },
  {
    name: "repair",
    help: "fsck: quarantine corrupt blobs, drop links to missing ones",
    env: false,
    command: "fsck",
    file: false,
  },
  { name: "help", help: "this text", env: false, file: false },
  { name: "version", help: "print the version", env: false, file: false },
];

/** The environment variable a flag may also come from, if any. */
export function envName(flag: Flag): string | undefined {
  if (flag.env === false) return undefined;
  return flag.env ?? `REGISTRY_${flag.name.toUpperCase().replaceAll("-", "_")}`;
}

/** Whether a flag may be set in the config file, under its own name. */
export const inFile = (flag: Flag) => flag.file !== false;

export const USAGE = [
  "usage: simple-registry [options]            serve the registry",
  "       simple-registry gc [--dry-run] [options]   collect garbage once, print what it frees",
  "       simple-registry fsck [--repair] [options]  re-hash blobs, check links (exit 1 on problems)",
  "       simple-registry config check FILE          check a config file (exit 1 on problems)",
  "",
  "Each flag can also be set by its environment variable (shown right), or in the --config file",
  "under its own name (`read-only: true`). Precedence: flag > environment > file > default.",
  `The file's other keys: ${SECTIONS.map((s) => s.key).join(", ")} (README: Policies).`,
  `SIGHUP re-reads the file and applies ${
    [...FLAGS.filter((f) => f.reload).map((f) => f.name), ...SECTIONS.map((s) => s.key)]
      .filter((key, i, all) => all.indexOf(key) === i).join(", ")
  }, htpasswd entries.`,
  "",
  ...FLAGS.map((flag) => {
    const left = `  --${flag.name}${flag.value ? ` ${flag.value}` : ""}`;
    const env = envName(flag);
    const envText = flag.multiple ? " (space-separated)" : flag.value ? "" : "=true";
    return `${left.padEnd(28)} ${flag.help}${env ? `  [${env}${envText}]` : ""}`;
  }),
].join("\n");

const OPTIONS = Object.fromEntries(
  FLAGS.map((flag) => [
    flag.name,
    { type: flag.value ? "string" : "boolean", multiple: flag.multiple ?? false } as const,
  ]),
);

/** Subcommands (the first positional). */
const COMMANDS = { gc: true, fsck: true, config: true } as const;

/**
 * The config file the command line names (`--config FILE`, `REGISTRY_CONFIG`, or
 * `config check FILE`), looked up before the full parse, which needs the file's settings.
 */
export function configPath(
  args: string[],
  env: Record<string, string | undefined>,
): string | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, strict: false, allowPositionals: true });
  } catch {
    return undefined; // the full parse reports it
  }
  const { values, positionals } = parsed;
  if (positionals[0] === "config" && positionals[1] === "check") return positionals[2];
  const given = values.config;
  return typeof given === "string" ? given : env[envName(FLAGS.find((f) => f.name === "config")!)!];
}

/**
 * Parses flags, falling back to `REGISTRY_<FLAG>` environment variables, then to the config
 * file's keys. An error about a value the file gave names the file, line and column.
 */
export function parseCommand(
  args: string[],
  env: Record<string, string | undefined>,
  file?: FileSettings,
): ParsedCommand {
  const fromFile = new Set<string>();
  const result = parseWith(args, env, file, fromFile);
  if (result.kind !== "error" || !file) return result;
  // `invalid --port: x` about a file's value → `registry.yaml:3:7: invalid port: x`.
  const named = [...result.message.matchAll(/--([a-z0-9-]+)/g)].map((m) => m[1]);
  const first = named.find((name) => fromFile.has(name));
  if (first === undefined) return result;
  let message = result.message;
  for (const name of named) if (fromFile.has(name)) message = message.replace(`--${name}`, name);
  return { kind: "error", message: `${file.path}:${file.flags[first].at}: ${message}` };
}

function parseWith(
  args: string[],
  env: Record<string, string | undefined>,
  file: FileSettings | undefined,
  fromFile: Set<string>,
): ParsedCommand {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    return { kind: "error", message: (error as Error).message.split("\n")[0] };
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  const [command, ...extra] = positionals;
  if (command !== undefined && !Object.hasOwn(COMMANDS, command)) {
    return { kind: "error", message: `unknown command: ${command} (expected gc, fsck or config)` };
  }
  if (command === "config") {
    if (extra[0] !== "check" || extra.length !== 2) {
      return { kind: "error", message: "usage: simple-registry config check FILE" };
    }
    extra.length = 0;
  }
  if (extra.length > 0) return { kind: "error", message: `unexpected argument: ${extra[0]}` };
  for (const flag of FLAGS) {
    if (flag.command && values[flag.name] && command !== flag.command) {
      return { kind: "error", message: `--${flag.name} goes with the ${flag.command} command` };
    }
  }

  const byName = new Map(FLAGS.map((flag) => [flag.name, flag]));
  const setting = (name: string): string | boolean | undefined => {
    const variable = envName(byName.get(name)!);
    const value = values[name];
    // A repeated flag (`--notify a --notify b`) reads as its values separated by spaces.
    const flag = Array.isArray(value) ? value.join(" ") : value;
    const given = flag ?? (variable === undefined ? undefined : env[variable]);
    if (given !== undefined || !file || !Object.hasOwn(file.flags, name)) return given;
    fromFile.add(name);
    return file.flags[name].value;
  };
  /** A repeatable flag's values: the command line's, else the environment's or the file's. */
  const settings = (name: string): string[] => {
    const value = values[name];
    if (Array.isArray(value)) return value.map(String);
    const text = setting(name);
    return typeof text === "string" ? text.split(/\s+/).filter(Boolean) : [];
  };
  const flagOn = (name: string) => isOn(setting(name));

  const port = String(setting("port") ?? "5000");
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return { kind: "error", message: `invalid --port: ${port}` };
  }
  const storage = String(setting("storage") ?? "fs");
  if (storage !== "fs" && storage !== "memory" && storage !== "s3") {
    return { kind: "error", message: `invalid --storage: ${storage} (expected fs, memory or s3)` };
  }
  const s3 = parseS3(storage, setting, env);
  if (typeof s3 === "string") return { kind: "error", message: s3 };
  const s3Redirect = parseRedirect(s3, setting);
  if (typeof s3Redirect === "string") return { kind: "error", message: s3Redirect };
  const redis = parseRedis(setting);
  if (typeof redis === "string") return { kind: "error", message: redis };
  const host = String(setting("host") ?? "0.0.0.0");
  const dataDir = String(setting("data-dir") ?? "./data");
  if (host === "" || dataDir === "") {
    return { kind: "error", message: "--host and --data-dir cannot be empty" };
  }
  const security = parseSecurity((flag) => {
    const value = setting(flag);
    return typeof value === "string" ? value : undefined;
  });
  if (typeof security === "string") return { kind: "error", message: security };
  const trustedProxies = String(setting("trusted-proxies") ?? "").split(",").map((s) => s.trim())
    .filter(Boolean);
  try {
    parseCidrs(trustedProxies.join(","));
  } catch (error) {
    return { kind: "error", message: `invalid --trusted-proxies: ${(error as Error).message}` };
  }
  const durations: Record<string, number> = {};
  const defaults = {
    "gc-interval": "0",
    "gc-grace": "1h",
    "upload-ttl": "24h",
    "header-timeout": "30s",
    "idle-timeout": "60s",
    "body-timeout": "60s",
  } as const;
  for (const [flag, fallback] of Object.entries(defaults) as [keyof typeof defaults, string][]) {
    const text = String(setting(flag) ?? fallback);
    const ms = parseDuration(text);
    if (ms === undefined) {
      return { kind: "error", message: `invalid --${flag}: ${text} (expected e.g. 30s, 1h, 24h)` };
    }
    durations[flag] = ms;
  }
  const maxConnections = setting("max-connections");
  if (maxConnections !== undefined && !/^[1-9]\d{0,6}$/.test(String(maxConnections))) {
    return { kind: "error", message: `invalid --max-connections: ${maxConnections}` };
  }
  // A policy path from the flag or the environment wins over one written inline in the file.
  const sections = { ...file?.sections };
  if (security.accessPolicy !== undefined) delete sections["access-policy"];
  if (security.auth === "none" && sections["access-policy"]) {
    return { kind: "error", message: "--access-policy needs auth (--auth basic or token)" };
  }
  if (sections.retention?.length && flagOn("no-delete")) {
    return { kind: "error", message: "retention deletes tags: it cannot run with --no-delete" };
  }
  const configFile = setting("config");
  const ops = parseOps(setting, settings);
  if (typeof ops === "string") return { kind: "error", message: ops };
  const proxy = parseProxySettings(
    setting,
    command === "gc" ? undefined : durations["gc-interval"],
  );
  if (typeof proxy === "string") return { kind: "error", message: proxy };
  const config: Config = {
    port: Number(port),
    host,
    verbose: flagOn("verbose"),
    storage,
    dataDir,
    deleteEnabled: !flagOn("no-delete"),
    ui: !flagOn("no-ui"),
    gcInterval: durations["gc-interval"],
    gcUntagged: flagOn("gc-untagged"),
    gcGrace: durations["gc-grace"],
    uploadTtl: durations["upload-ttl"],
    headerTimeout: durations["header-timeout"],
    idleTimeout: durations["idle-timeout"],
    bodyTimeout: durations["body-timeout"],
    ...(maxConnections !== undefined && { maxConnections: Number(maxConnections) }),
    ...(s3 && { s3 }),
    ...(s3Redirect && { s3Redirect }),
    ...(redis && { redis }),
    ...security,
    trustedProxies,
    readOnly: flagOn("read-only"),
    ...(typeof configFile === "string" && { configFile }),
    sections,
    ...ops,
    ...proxy,
  };
  if (command === "config") return { kind: "check", config };
  if (command === "gc") return { kind: "gc", config, dryRun: values["dry-run"] === true };
  if (command === "fsck") return { kind: "fsck", config, repair: values.repair === true };
  return { kind: "serve", config };
}

/**
 * The mirror's flags; a string is the one-line error. Cache limits need upstreams, and, when
 * serving (`gcInterval` given), the online GC that enforces them.
 */
function parseProxySettings(
  setting: (flag: string) => string | boolean | undefined,
  gcInterval: number | undefined,
): Pick<Config, "proxyConfig" | "proxy" | "proxyMaxAge" | "proxyMaxBytes"> | string {
  const text = (flag: string) => {
    const value = setting(flag);
    return typeof value === "string" ? value.trim() : undefined;
  };
  const proxyConfig = text("proxy-config");
  if (proxyConfig === "") return "--proxy-config cannot be empty";
  const proxy = (text("proxy") ?? "").split(/\s+/).filter((entry) => entry !== "");
  for (const entry of proxy) {
    try {
      parseProxyFlag(entry);
    } catch (error) {
      return `invalid --proxy ${entry}: ${(error as Error).message}`;
    }
  }
  const age = text("proxy-max-age");
  const proxyMaxAge = age === undefined ? undefined : parseDuration(age);
  if (age !== undefined && !proxyMaxAge) {
    return `invalid --proxy-max-age: ${age} (expected e.g. 7d, 12h)`;
  }
  const bytes = text("proxy-max-bytes");
  const proxyMaxBytes = bytes === undefined ? undefined : parseSize(bytes);
  if (bytes !== undefined && !proxyMaxBytes) {
    return `invalid --proxy-max-bytes: ${bytes} (expected bytes, or e.g. 500M, 20G, 1T)`;
  }
  const limited = proxyMaxAge !== undefined || proxyMaxBytes !== undefined;
  if (limited && proxyConfig === undefined && proxy.length === 0) {
    return "--proxy-max-age and --proxy-max-bytes need --proxy or --proxy-config";
  }
  if (limited && gcInterval === 0) {
    return "--proxy-max-age and --proxy-max-bytes are enforced by the online GC: add --gc-interval";
  }
  return {
    proxy,
    ...(proxyConfig !== undefined && { proxyConfig }),
    ...(proxyMaxAge !== undefined && { proxyMaxAge }),
    ...(proxyMaxBytes !== undefined && { proxyMaxBytes }),
  };
}

type OpsFields = "metrics" | "metricsAddr" | "notify" | "notifyConfig" | "auditLog" | "traceparent";

/** Metrics, webhooks, audit log and tracing flags (src/ops); a string is the one-line error. */
function parseOps(
  setting: (flag: string) => string | boolean | undefined,
  settings: (flag: string) => string[],
): Pick<Config, OpsFields> | string {
  const metrics = !isOn(setting("no-metrics"));
  const text = (flag: string) => {
    const value = setting(flag);
    return typeof value === "string" ? value.trim() : undefined;
  };
  const addr = text("metrics-addr");
  let metricsAddr: Config["metricsAddr"];
  if (addr !== undefined) {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(addr);
    if (!match || Number(match[3]) > 65535) {
      return `invalid --metrics-addr: ${addr} (expected HOST:PORT, e.g. 127.0.0.1:9090)`;
    }
    if (!metrics) return "--metrics-addr and --no-metrics exclude each other";
    metricsAddr = { hostname: match[1] ?? (match[2] || "0.0.0.0"), port: Number(match[3]) };
  }
  for (const flag of ["notify-config", "audit-log"]) {
    if (text(flag) === "") return `--${flag} cannot be empty`;
  }
  return {
    metrics,
    ...(metricsAddr && { metricsAddr }),
    notify: settings("notify"),
    ...(text("notify-config") !== undefined && { notifyConfig: text("notify-config") }),
    ...(text("audit-log") !== undefined && { auditLog: text("audit-log") }),
    traceparent: isOn(setting("traceparent")),
  };
}

/** The settings src/auth reads. */
export type AuthFields =
  | "auth"
  | "htpasswd"
  | "accessPolicy"
  | "tokenKey"
  | "tokenRealm"
  | "tokenIssuer"
  | "tokenService"
  | "tokenJwks"
  | "tokenCert";

type SecurityFields = AuthFields | "tlsCert" | "tlsKey";

/** Auth and TLS flags, checked for consistency; a string is the one-line error. */
function parseSecurity(
  get: (flag: string) => string | undefined,
): Pick<Config, SecurityFields> | string {
  const files = {
    htpasswd: get("htpasswd"),
    accessPolicy: get("access-policy"),
    tokenKey: get("token-key"),
    tokenRealm: get("token-realm"),
    tokenIssuer: get("token-issuer"),
    tokenService: get("token-service"),
    tokenJwks: get("token-jwks"),
    tokenCert: get("token-cert"),
    tlsCert: get("tls-cert"),
    tlsKey: get("tls-key"),
  };
  for (const [key, value] of Object.entries(files)) {
    if (value === "") {
      return `--${key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} cannot be empty`;
    }
  }
  const external = files.tokenJwks !== undefined || files.tokenCert !== undefined;
  const auth = get("auth") ??
    (files.tokenRealm !== undefined && external ? "token" : files.htpasswd ? "basic" : "none");
  if (auth !== "none" && auth !== "basic" && auth !== "token") {
    return `invalid --auth: ${auth} (expected none, basic or token)`;
  }
  if ((files.tlsCert === undefined) !== (files.tlsKey === undefined)) {
    return "--tls-cert and --tls-key go together";
  }
  const tokenFlags = [
    "tokenKey",
    "tokenRealm",
    "tokenIssuer",
    "tokenService",
    "tokenJwks",
    "tokenCert",
  ]
    .filter((key) => files[key as keyof typeof files] !== undefined);
  if (auth !== "token" && tokenFlags.length > 0) {
    return `--token-* flags need --auth token`;
  }
  if (auth === "none" && (files.htpasswd !== undefined || files.accessPolicy !== undefined)) {
    return "--htpasswd and --access-policy need auth (--auth basic or token)";
  }
  if (auth === "basic" && files.htpasswd === undefined) return "--auth basic needs --htpasswd FILE";
  if (auth === "token") {
    if (files.tokenJwks !== undefined && files.tokenCert !== undefined) {
      return "give --token-jwks or --token-cert, not both";
    }
    if (external) {
      if (
        files.tokenRealm === undefined || files.tokenIssuer === undefined ||
        files.tokenService === undefined
      ) {
        return "an external token server needs --token-realm, --token-issuer and --token-service";
      }
      if (files.tokenKey !== undefined) {
        return "--token-key signs built-in tokens; not with --token-jwks/--token-cert";
      }
      if (!/^https?:\/\//.test(files.tokenRealm)) {
        return `invalid --token-realm: ${files.tokenRealm} (expected a URL)`;
      }
    } else if (files.htpasswd === undefined) {
      return "--auth token needs --htpasswd FILE (built-in token server) or --token-jwks/--token-cert (external)";
    }
  }
  return { auth, ...files };
}

const DEFAULT_REDIRECT_MIN = 1024 * 1024;

/**
 * --s3-redirect: on by default where clients reach the bucket as the registry does (AWS); an
 * endpoint of one's own (Ceph, MinIO, often on a private or loopback address) only when asked.
 */
function parseRedirect(
  s3: S3Options | undefined,
  setting: (flag: string) => string | boolean | undefined,
): Config["s3Redirect"] | string {
  const flag = setting("s3-redirect");
  const min = setting("s3-redirect-min");
  if (!s3) {
    return flag !== undefined || min !== undefined ? "--s3-redirect needs --storage s3" : undefined;
  }
  if (typeof flag === "string" && !/^(1|0|true|false|yes|no|on|off)$/i.test(flag)) {
    return `invalid REGISTRY_S3_REDIRECT: ${flag} (expected true or false)`;
  }
  const aws = /(^|\.)amazonaws\.com$/.test(new URL(s3.endpoint).hostname);
  const on = flag === undefined ? aws : isOn(flag);
  const minSize = min === undefined ? DEFAULT_REDIRECT_MIN : parseSize(String(min));
  if (minSize === undefined) {
    return `invalid --s3-redirect-min: ${min} (expected bytes, or e.g. 512K, 4M)`;
  }
  return on ? { minSize } : undefined;
}

/** --redis URL and --redis-lease. */
function parseRedis(
  setting: (flag: string) => string | boolean | undefined,
): Config["redis"] | string {
  const url = setting("redis");
  const leaseText = setting("redis-lease");
  if (url === undefined || url === "") {
    return leaseText === undefined ? undefined : "--redis-lease needs --redis URL";
  }
  let parsed: URL | undefined;
  try {
    parsed = new URL(String(url));
  } catch {
    parsed = undefined;
  }
  if (!parsed || !/^rediss?:$/.test(parsed.protocol) || !parsed.hostname) {
    return "invalid --redis: expected redis://[user:pass@]host[:port][/db] or rediss://…";
  }
  const lease = parseDuration(String(leaseText ?? "30s"));
  if (lease === undefined || lease < 1000) {
    return `invalid --redis-lease: ${leaseText} (expected e.g. 10s, 30s, 2m)`;
  }
  return { url: String(url), lease };
}

const S3_FLAGS = [
  "s3-endpoint",
  "s3-bucket",
  "s3-region",
  "s3-prefix",
  "s3-path-style",
  "s3-virtual-host",
  "s3-access-key",
  "s3-secret-key",
] as const;

/** The --s3-* settings; undefined for other storage, a string for the one-line error. */
function parseS3(
  storage: string,
  setting: (flag: string) => string | boolean | undefined,
  env: Record<string, string | undefined>,
): S3Options | undefined | string {
  if (storage !== "s3") {
    const given = S3_FLAGS.find((flag) => setting(flag) !== undefined);
    return given ? `--${given} needs --storage s3` : undefined;
  }
  const text = (flag: (typeof S3_FLAGS)[number]) => {
    const value = setting(flag);
    return typeof value === "string" ? value.trim() : undefined;
  };
  const region = text("s3-region") || "us-east-1";
  if (!/^[a-z0-9-]+$/.test(region)) return `invalid --s3-region: ${region}`;
  const bucket = text("s3-bucket");
  if (!bucket) return "--storage s3 needs --s3-bucket NAME";
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    return `invalid --s3-bucket: ${bucket} (3-63 of a-z 0-9 . -)`;
  }
  const custom = text("s3-endpoint");
  const endpoint = custom || `https://s3.${region}.amazonaws.com`;
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname !== "/" || url.search) {
    return `invalid --s3-endpoint: ${endpoint} (expected http(s)://host[:port])`;
  }
  const prefix = (text("s3-prefix") ?? "").replace(/^\/+|\/+$/g, "");
  if (
    prefix && prefix.split("/").some((s) => s === "" || s === "." || s === ".." || s[0] === ".")
  ) {
    return `invalid --s3-prefix: ${prefix}`;
  }
  const pathFlag = setting("s3-path-style");
  if (typeof pathFlag === "string" && !/^(1|0|true|false|yes|no|on|off)$/i.test(pathFlag)) {
    return `invalid REGISTRY_S3_PATH_STYLE: ${pathFlag} (expected true or false)`;
  }
  const virtualHost = setting("s3-virtual-host") === true;
  if (pathFlag === true && virtualHost) {
    return "--s3-path-style and --s3-virtual-host exclude each other";
  }
  const pathStyle = virtualHost ? false : pathFlag === undefined ? Boolean(custom) : isOn(pathFlag);
  const accessKeyId = text("s3-access-key") || env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = text("s3-secret-key") || env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    return "--storage s3 needs credentials: --s3-access-key and --s3-secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  }
  return {
    endpoint: url.origin,
    bucket,
    region,
    prefix,
    pathStyle,
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN && !text("s3-access-key") && { sessionToken: env.AWS_SESSION_TOKEN }),
  };
}

/**
 * Whether an address to listen on is reachable from this machine only: `localhost`, 127.0.0.0/8
 * or `::1`. Without auth, any other address lets whoever reaches it push and delete.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" ||
    /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
