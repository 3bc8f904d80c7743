// Owns the command line: flags with node:util parseArgs (strict), each also read from REGISTRY_*.
// A flag wins over the environment; the result is a plain Config or a usage error.

import { parseArgs } from "node:util";

export const VERSION = "0.1.0";

export interface Config {
  port: number;
  host: string;
  verbose: boolean;
  storage: "fs" | "memory";
  dataDir: string;
  deleteEnabled: boolean;
}

export type ParsedCommand =
  | { kind: "serve"; config: Config }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "error"; message: string };

export const USAGE = `usage: simple-registry [options]

  --port N            port to listen on (default 5000)            REGISTRY_PORT
  --host ADDR         address to listen on (default 0.0.0.0)      REGISTRY_HOST
  --verbose           debug logs                                  REGISTRY_VERBOSE=true
  --storage fs|memory storage driver (default fs)                 REGISTRY_STORAGE
  --data-dir DIR      where fs storage keeps data (default ./data) REGISTRY_DATA_DIR
  --no-delete         refuse DELETE with 405 UNSUPPORTED           REGISTRY_NO_DELETE=true
  --help              this text
  --version           print the version`;

const OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  verbose: { type: "boolean" },
  storage: { type: "string" },
  "data-dir": { type: "string" },
  "no-delete": { type: "boolean" },
  help: { type: "boolean" },
  version: { type: "boolean" },
} as const;

/** Parses flags, falling back to `REGISTRY_<FLAG>` environment variables. */
export function parseCommand(
  args: string[],
  env: Record<string, string | undefined>,
): ParsedCommand {
  let values;
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    return { kind: "error", message: (error as Error).message.split("\n")[0] };
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  const setting = (flag: keyof typeof OPTIONS): string | boolean | undefined =>
    values[flag] ?? env[`REGISTRY_${flag.toUpperCase().replaceAll("-", "_")}`];
  const flagOn = (flag: keyof typeof OPTIONS) => {
    const value = setting(flag);
    return value === true || (typeof value === "string" && /^(1|true|yes|on)$/i.test(value));
  };

  const port = String(setting("port") ?? "5000");
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return { kind: "error", message: `invalid --port: ${port}` };
  }
  const storage = String(setting("storage") ?? "fs");
  if (storage !== "fs" && storage !== "memory") {
    return { kind: "error", message: `invalid --storage: ${storage} (expected fs or memory)` };
  }
  const host = String(setting("host") ?? "0.0.0.0");
  const dataDir = String(setting("data-dir") ?? "./data");
  if (host === "" || dataDir === "") {
    return { kind: "error", message: "--host and --data-dir cannot be empty" };
  }
  return {
    kind: "serve",
    config: {
      port: Number(port),
      host,
      verbose: flagOn("verbose"),
      storage,
      dataDir,
      deleteEnabled: !flagOn("no-delete"),
    },
  };
}
