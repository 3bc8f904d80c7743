// Simple Registry's entry point: reads flags, environment and config file, starts the server,
// handles signals (SIGHUP reloads the config). The only module that reads Deno.args or the
// environment, or exits.

import { isLoopbackHost, USAGE, VERSION } from "./src/config.ts";
import { flushLogs, log, setupLogging } from "./src/log.ts";
import { createDriver, readTls, startServer, storageIdentity } from "./src/server.ts";
import { createAuth } from "./src/auth/auth.ts";
import { runMaintenance } from "./src/maintenance/commands.ts";
import { loadCommand } from "./src/settings/load.ts";
import { opsSettings } from "./src/ops/ops.ts";
import { loadUpstreams } from "./src/proxy/config.ts";
import { cacheLimits } from "./src/proxy/mirror.ts";

const readText = (path: string) => Deno.readTextFile(path);
const command = await loadCommand(Deno.args, Deno.env.toObject(), readText);
switch (command.kind) {
  case "help":
    console.log(USAGE);
    Deno.exit(0);
    break;
  case "version":
    console.log(`simple-registry ${VERSION}`);
    Deno.exit(0);
    break;
  case "error":
    console.error(`error: ${command.message}`);
    console.error(USAGE);
    Deno.exit(2);
    break;
  case "invalid":
    // A config file that cannot be read or has problems: one line naming where.
    console.error(`error: ${command.message}`);
    Deno.exit(1);
    break;
  case "checked":
    for (const problem of command.problems) console.log(problem);
    if (command.problems.length === 0) console.log(`${command.path}: ok`);
    Deno.exit(command.problems.length === 0 ? 0 : 1);
    break;
  case "check":
    Deno.exit(0); // loadCommand answers config check with "checked"
}

const { config } = command;
await setupLogging({ verbose: config.verbose });
/** Start-up failures are one line on stderr and exit status 1. */
const fail = async (error: unknown): Promise<never> => {
  console.error(`error: ${(error as Error).message.split("\n")[0]}`);
  await flushLogs();
  Deno.exit(1);
};
// Upstreams of a mirror (a bad --proxy-config is one line naming the field).
const upstreams = await loadUpstreams(config, { readTextFile: readText, env: Deno.env.toObject() })
  .catch(fail);
const mirror = upstreams.length === 0
  ? undefined
  : { upstreams, maxAge: config.proxyMaxAge, maxBytes: config.proxyMaxBytes };
if (command.kind === "gc" || command.kind === "fsck") {
  // One pass, a printed summary; storage errors are one line and exit 1.
  const code = await runMaintenance(
    command,
    createDriver(config),
    storageIdentity(config),
    console.log,
    // A mirror's cache limits apply to an offline pass too (its upstreams say what is cache).
    mirror && (mirror.maxAge !== undefined || mirror.maxBytes !== undefined)
      ? cacheLimits(mirror)
      : undefined,
  )
    .catch(fail);
  await flushLogs();
  Deno.exit(code);
}
/** The settings anew, for a reload: the same flags and environment, the config file re-read. */
const load = async () => {
  const next = await loadCommand(Deno.args, Deno.env.toObject(), readText);
  if (next.kind === "serve") return next.config;
  throw new Error("message" in next ? next.message : `unexpected ${next.kind}`);
};
// Bad auth, TLS or notification files (a non-bcrypt htpasswd line, an unreadable key…).
const [auth, tls, ops] = await Promise.all([
  createAuth(config),
  readTls(config),
  opsSettings(config),
]).catch(fail);
// Storage that cannot be reached (an S3 bucket, keys, endpoint) or a taken port.
const server = await startServer({
  ...config,
  driver: createDriver(config),
  auth,
  tls,
  ops,
  settings: { initial: config, load },
  mirror,
}).catch(fail);
if (config.auth === "none" && !isLoopbackHost(config.host)) {
  log.warn(
    "no authentication on a non-loopback address: anyone who can reach it may push and delete",
    { "server.address": config.host, hint: "--htpasswd FILE or --auth token, or --host 127.0.0.1" },
  );
}

const stop = async (signal: Deno.Signal) => {
  log.info("shutting down", { signal });
  await server.shutdown();
  await flushLogs();
  Deno.exit(0);
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => stop(signal));
}
// The config file again: policies, retention, quotas, read-only, access policy, htpasswd.
Deno.addSignalListener("SIGHUP", () => {
  log.info("reloading the config", { signal: "SIGHUP" });
  server.reload();
});
