// Owns the server's life: the driver chosen by the config, the listener (src/listen.ts), shutdown.
// Tests start it in-process with port 0; main.ts starts it from the command line.

import { createApp } from "./app.ts";
import type { Authorizer } from "./auth/types.ts";
import type { Config } from "./config.ts";
import { parseCidrs } from "./forwarded.ts";
import { type ConnectionLimits, DEFAULT_LIMITS, defaultMaxConnections, listen } from "./listen.ts";
import { log } from "./log.ts";
import { createStore, type Store } from "./store/store.ts";
import { DEFAULT_UPLOAD_TTL } from "./store/state.ts";
import { startUploadExpiry } from "./maintenance/expiry.ts";
import { type GcLoopSettings, startGcLoop } from "./maintenance/gc.ts";
import { applyRetention } from "./maintenance/retention.ts";
import { type LivePolicies, livePolicies, policiesFrom } from "./policy/policies.ts";
import { createQuotas } from "./policy/quota.ts";
import { withPolicies } from "./policy/store.ts";
import { createReloader, type ReloadOutcome, type ReloadPart } from "./settings/reload.ts";
import type { Sections } from "./settings/sections.ts";
import { FLUSH_INTERVAL, flushPulls, startPullFlushes } from "./store/pulls.ts";
import type { StorageDriver } from "./storage/driver.ts";
import { createFsDriver } from "./storage/fs.ts";
import { createMemoryDriver } from "./storage/memory.ts";
import { createS3Driver } from "./storage/s3/driver.ts";
import { createUi } from "./ui/state.ts";
import { createMirror, type MirrorSettings } from "./proxy/mirror.ts";
import type { ProxyDeps } from "./proxy/store.ts";
import { type OpsSettings, startOps } from "./ops/ops.ts";
import { connectCoordination, type RedisSettings } from "./redis/shared.ts";

export interface RunningServer extends AsyncDisposable {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts them. */
  shutdown(graceMs?: number): Promise<void>;
  /** The registry's content, for in-process maintenance (GC, fsck) and tests. */
  store: Store;
  /** The policies in force (read-only, retention, immutability, quotas). */
  policies: LivePolicies;
  /**
   * Reads the settings again (`loadConfig`) and applies what changed, all of it or nothing
   * (src/settings/reload.ts); without `loadConfig` it only reports that it cannot.
   */
  reload(): Promise<ReloadOutcome>;
  /** The --metrics-addr listener's `http://host:port`, when there is one. */
  metricsUrl?: string;
}

/** What the registry stores into, as one string: instances sharing Redis and storage agree on it. */
export function storageIdentity(
  config: Partial<Pick<Config, "storage" | "dataDir" | "s3">>,
): string {
  if (config.storage === "s3" && config.s3) {
    const { endpoint, bucket, prefix } = config.s3;
    return `s3:${endpoint}/${bucket}/${prefix ?? ""}`;
  }
  return `${config.storage}:${config.dataDir}`;
}

/** How long a redirect's presigned URL is valid (seconds): a client follows it at once. */
export const REDIRECT_SECONDS = 600;

export function createDriver(config: Pick<Config, "storage" | "dataDir" | "s3">): StorageDriver {
  if (config.storage === "s3") {
    if (!config.s3) throw new Error("--storage s3 needs its --s3-* settings");
    return createS3Driver(config.s3);
  }
  return config.storage === "memory" ? createMemoryDriver() : createFsDriver(config.dataDir);
}

/** PEM certificate chain and key, read from --tls-cert/--tls-key; undefined without them. */
export interface Tls {
  cert: string;
  key: string;
}

/** Reads the TLS files; throws one clear Error naming the file that cannot be read. */
export async function readTls(
  config: Pick<Config, "tlsCert" | "tlsKey">,
): Promise<Tls | undefined> {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const read = (path: string, what: string) =>
    Deno.readTextFile(path).catch((error) => {
      throw new Error(`${what} ${path}: ${(error as Error).message}`);
    });
  return {
    cert: await read(config.tlsCert, "TLS certificate"),
    key: await read(config.tlsKey, "TLS key"),
  };
}

export async function startServer(
  config:
    & Pick<Config, "port" | "host" | "deleteEnabled">
    & Partial<Pick<Config, "storage" | "dataDir" | "s3">>
    & {
      driver: StorageDriver;
      /** Online GC and upload expiry (src/gc.ts); off unless gcInterval > 0. */
      gcInterval?: number;
      gcUntagged?: boolean;
      gcGrace?: number;
      uploadTtl?: number;
      /** Auth and access control (src/auth/auth.ts createAuth); absent: open registry. */
      auth?: Authorizer;
      /** HTTPS; plain HTTP only when absent. */
      tls?: Tls;
      /** Bytes of small request bodies held in memory at once (src/app.ts). */
      bodyBudget?: number;
      /** CIDR ranges whose X-Forwarded-* headers are believed. */
      trustedProxies?: string[];
      /** The web UI at / (default on; src/ui/). */
      ui?: boolean;
      /** Read-only mode and the config file's policies (src/policy); reloadable. */
      readOnly?: boolean;
      sections?: Sections;
      /**
       * Reloads: the settings the server starts with, and how to read them anew from the command
       * line, environment and config file (main.ts).
       */
      settings?: { initial: Config; load: () => Promise<Config> };
      /** Cache, locks and GC pins shared through Redis (src/redis/); absent: this process's. */
      redis?: RedisSettings;
      /** Blob GETs answered 307 to a presigned URL (a driver that signs URLs: S3). */
      s3Redirect?: { minSize: number };
      /** Metrics, health, events, audit log, tracing (src/ops/ops.ts); default metrics only. */
      ops?: OpsSettings;
      /** A pull-through cache of these upstreams (src/proxy); absent: no mirror. */
      mirror?: MirrorSettings & ProxyDeps;
    }
    & Partial<ConnectionLimits>,
): Promise<RunningServer> {
  // Storage that cannot be reached (wrong bucket, keys, endpoint) fails here, before listening;
  // so does a Redis that cannot be.
  await config.driver.ready?.();
  const coordination = config.redis && await connectCoordination({
    ...config.redis,
    storage: config.redis.storage ?? storageIdentity(config),
  });
  // S3 is meant to be shared by several instances: no per-process cache of tags or manifests,
  // unless they share one (and their locks and pins) through Redis.
  const sharedStorage = config.driver.kind === "s3";
  // Metrics wrap the driver and the store (src/ops); the policies wrap what they give.
  const ops = await startOps(config.ops ?? {}, config.driver, (driver) =>
    createStore({
      driver,
      deleteEnabled: config.deleteEnabled,
      sharedStorage,
      coordination,
      uploadTtl: config.uploadTtl,
      // For retention's "not pulled for": a map update per pull, a write per repository a minute.
      recordPulls: true,
      redirect: config.s3Redirect &&
        { minSize: config.s3Redirect.minSize, expiresIn: REDIRECT_SECONDS },
    }), sharedStorage);
  const local = ops.store;
  const policies = livePolicies(policiesFrom(config));
  const quotas = createQuotas(local.state, () => policies.current().quotas);
  const governed = withPolicies(local, { policies, quotas });
  // A mirror wraps it: proxied names are the upstreams', every other name goes on as before.
  const mirror = config.mirror && createMirror(governed, config.mirror, config.mirror);
  const store = mirror?.store ?? governed;
  const readOnly = () => policies.current().readOnly;
  // Pull records begin now (`_pulls/_since`) if they never did: "not pulled for" counts from it.
  if (!readOnly()) await flushPulls(local.state);
  const trustedProxies = parseCidrs((config.trustedProxies ?? []).join(","));
  const ui = config.ui === false
    ? undefined
    : createUi(store, { gc: gcSettings(config), signedOut: coordination?.signedOut });
  const app = createApp(store, {
    auth: config.auth,
    bodyBudget: config.bodyBudget,
    trustedProxies,
    ui,
    taps: ops.taps,
    ops: ops.routes,
    resolveName: mirror?.resolveName,
  });
  const limits: ConnectionLimits = {
    headerTimeout: config.headerTimeout ?? DEFAULT_LIMITS.headerTimeout,
    idleTimeout: config.idleTimeout ?? DEFAULT_LIMITS.idleTimeout,
    bodyTimeout: config.bodyTimeout ?? DEFAULT_LIMITS.bodyTimeout,
    maxConnections: config.maxConnections ?? defaultMaxConnections(),
  };
  const server = listen({ hostname: config.host, port: config.port, tls: config.tls }, limits, app);
  const address = server.addr;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const url = `${config.tls ? "https" : "http"}://${host}:${address.port}`;
  log.info("listening", {
    "server.address": address.hostname,
    "server.port": address.port,
    "url.full": url,
    "storage.kind": config.driver.kind,
    "cache.kind": store.state.cache.kind,
    "auth.mode": config.auth?.mode ?? "none",
    "connections.max": limits.maxConnections,
  });

  const gc = config.gcInterval
    ? startGcLoop(store.state, {
      ...gcSettings(config),
      paused: readOnly,
      retention(repositories, context) {
        const now = policies.current();
        if (now.retention.length === 0) return Promise.resolve(undefined);
        // The registry's own deletes: a mirror's cached tags too (the mirror refuses clients').
        return applyRetention(governed, now, repositories, context);
      },
      finished(outcome) {
        quotas.stale();
        ops.gcFinished(outcome);
      },
      cache: mirror?.cache,
    })
    : undefined;
  await ops.start(address.port);
  const expiry = startUploadExpiry(store.state, store.state.uploadTtl, readOnly);
  const pulls = startPullFlushes(store.state, FLUSH_INTERVAL, readOnly);
  warnIdleRetention(policies.current().retention.length, config.gcInterval);

  const parts: ReloadPart[] = [
    { name: "notifications", prepare: (next) => ops.prepareNotifications(next) },
    {
      name: "policies",
      prepare(next) {
        const compiled = policiesFrom(next);
        return Promise.resolve(() => {
          policies.replace(compiled);
          warnIdleRetention(compiled.retention.length, config.gcInterval);
        });
      },
    },
  ];
  const auth = config.auth as (Authorizer & { prepareReload?: ReloadPart["prepare"] }) | undefined;
  if (auth?.prepareReload) {
    parts.push({
      name: "auth",
      prepare: (next) => auth.prepareReload!(next),
    });
  }
  const reload = config.settings
    ? createReloader({ ...config.settings, parts })
    : () =>
      Promise.resolve({
        ok: false,
        error: "no config to reload",
        restartNeeded: [],
        durationMs: 0,
      });

  let stopped: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000) => {
    stopped ??= (async () => {
      ops.stopping();
      await Promise.all([gc?.stop(), expiry.stop(), pulls.stop()]);
      await server.shutdown(graceMs);
      await ops.stop();
      const { accepted, evicted, refused, timedOut, acceptErrors } = server.stats;
      await coordination?.close();
      log.info("stopped", {
        "connections.accepted": accepted,
        "connections.evicted": evicted,
        "connections.refused": refused,
        "connections.timed_out": timedOut.header + timedOut.idle + timedOut.body,
        "accept.errors": acceptErrors,
      });
    })();
    return stopped;
  };
  return {
    url,
    port: address.port,
    store,
    policies,
    reload,
    metricsUrl: ops.metricsUrl,
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(),
  };
}

/** Retention rules run in the GC loop: without it they wait for a `gc` command. */
function warnIdleRetention(rules: number, gcInterval: number | undefined): void {
  if (rules > 0 && !gcInterval) {
    log.warn("retention rules apply only when GC runs: set gc-interval, or run the gc command", {
      "retention.rules": rules,
    });
  }
}

/** The loop's settings from the config, with the command line's defaults. */
function gcSettings(
  config: Partial<Pick<Config, "gcInterval" | "gcUntagged" | "gcGrace" | "uploadTtl">>,
): GcLoopSettings {
  return {
    interval: config.gcInterval ?? 0,
    untagged: config.gcUntagged ?? false,
    grace: config.gcGrace ?? 3_600_000,
    uploadTtl: config.uploadTtl ?? DEFAULT_UPLOAD_TTL,
  };
}
