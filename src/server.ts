// Owns the server's life: the driver chosen by the config, Deno.serve, and graceful shutdown.
// Tests start it in-process with port 0; main.ts starts it from the command line.

import { createApp } from "./app.ts";
import type { Config } from "./config.ts";
import { log } from "./log.ts";
import { createRegistry } from "./registry.ts";
import type { StorageDriver } from "./storage/driver.ts";
import { createFsDriver } from "./storage/fs.ts";
import { createMemoryDriver } from "./storage/memory.ts";

export interface RunningServer extends AsyncDisposable {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts them. */
  shutdown(graceMs?: number): Promise<void>;
}

export function createDriver(config: Pick<Config, "storage" | "dataDir">): StorageDriver {
  return config.storage === "memory" ? createMemoryDriver() : createFsDriver(config.dataDir);
}

export async function startServer(
  config: Pick<Config, "port" | "host" | "deleteEnabled"> & { driver: StorageDriver },
): Promise<RunningServer> {
  const registry = createRegistry({ driver: config.driver, deleteEnabled: config.deleteEnabled });
  const app = createApp(registry);
  const abort = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve(
    { hostname: config.host, port: config.port, signal: abort.signal, onListen: resolve },
    app,
  );
  const address = await listening;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const url = `http://${host}:${address.port}`;
  log.info("listening", {
    "server.address": address.hostname,
    "server.port": address.port,
    "url.full": url,
    "storage.kind": config.driver.kind,
  });

  let stopped: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000) => {
    stopped ??= (async () => {
      const timer = setTimeout(() => abort.abort(), graceMs);
      await server.shutdown();
      clearTimeout(timer);
      log.info("stopped", {});
    })();
    return stopped;
  };
  return { url, port: address.port, shutdown, [Symbol.asyncDispose]: () => shutdown() };
}
