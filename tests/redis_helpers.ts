// Test helpers for Redis: a throw-away redis-server (Debian `redis-server`) on 127.0.0.1, on a free
// port with its own temp dir, that a test can kill and restart on the same port.

import { sendSignal, type TempDir, tempDir } from "./helpers.ts";

const BINARY = "redis-server";

function installed(): boolean {
  try {
    new Deno.Command(BINARY, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

const CI = Deno.permissions.querySync({ name: "env", variable: "CI" }).state === "granted" &&
  Deno.env.get("CI") === "true";
/** Redis tests run when redis-server is installed, and always under CI (where they then fail). */
export const REDIS_IGNORE = !installed() && !CI;
export const REDIS_SKIP_REASON = "redis tests skipped: install redis-server (Debian package)";

export interface TestRedis extends AsyncDisposable {
  url: string;
  port: number;
  /** SIGKILLs it: what it held is gone (no persistence). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Runs one redis-cli-like command through a raw connection (RESP), returns the raw reply. */
  command(...args: string[]): Promise<string>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export async function startRedis(): Promise<TestRedis> {
  const dir: TempDir = await tempDir("registry-redis-");
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  const command = async (...args: string[]): Promise<string> => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const request = `*${args.length}\r\n` +
        args.map((a) => `$${new TextEncoder().encode(a).length}\r\n${a}\r\n`).join("");
      await conn.write(new TextEncoder().encode(request));
      const buffer = new Uint8Array(65536);
      const n = await conn.read(buffer);
      return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    } finally {
      conn.close();
    }
  };
  const start = async () => {
    child = new Deno.Command(BINARY, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir.path,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 200; i++) {
      try {
        if ((await command("PING")).startsWith("+PONG")) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };
  const kill = async () => {
    if (!child) return;
    sendSignal(child, "SIGKILL");
    await child.status;
    child = undefined;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    command,
    async [Symbol.asyncDispose]() {
      await kill();
      await dir[Symbol.asyncDispose]();
    },
  };
}
