// Simple Registry's entry point: parses flags and environment, starts the server, handles signals.
// The only module that reads Deno.args or the environment, or exits.

import { isLoopbackHost, parseCommand, USAGE, VERSION } from "./src/config.ts";
import { flushLogs, log, setupLogging } from "./src/log.ts";
import { createDriver, readTls, startServer } from "./src/server.ts";
import { createAuth } from "./src/auth/auth.ts";
import { runMaintenance } from "./src/maintenance/commands.ts";

const command = parseCommand(Deno.args, Deno.env.toObject());
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
}

const { config } = command;
await setupLogging({ verbose: config.verbose });
/** Start-up failures are one line on stderr and exit status 1. */
const fail = async (error: unknown): Promise<never> => {
  console.error(`error: ${(error as Error).message.split("\n")[0]}`);
  await flushLogs();
  Deno.exit(1);
};
if (command.kind === "gc" || command.kind === "fsck") {
  // One pass, a printed summary; storage errors are one line and exit 1.
  const code = await runMaintenance(command, createDriver(config)).catch(fail);
  await flushLogs();
  Deno.exit(code);
}
// Bad auth or TLS files (a non-bcrypt htpasswd line, an unreadable key…).
const [auth, tls] = await Promise.all([createAuth(config), readTls(config)]).catch(fail);
// Storage that cannot be reached (an S3 bucket, keys, endpoint) or a taken port.
const server = await startServer({ ...config, driver: createDriver(config), auth, tls })
  .catch(fail);
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
