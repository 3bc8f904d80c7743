// Simple Registry's entry point: parses flags and environment, starts the server, handles signals.
// The only module that reads Deno.args or the environment, or exits.

import { parseCommand, USAGE, VERSION } from "./src/config.ts";
import { flushLogs, log, setupLogging } from "./src/log.ts";
import { createDriver, startServer } from "./src/server.ts";

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
const server = await startServer({ ...config, driver: createDriver(config) });

const stop = async (signal: Deno.Signal) => {
  log.info("shutting down", { signal });
  await server.shutdown();
  await flushLogs();
  Deno.exit(0);
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => stop(signal));
}
