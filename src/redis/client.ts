// Owns the connection to Redis (node-redis): connecting, reconnecting, bounded commands, Lua scripts.
// Redis serialization protocol through `redis` (npm); commands never queue while it is unreachable.

import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { createClient, RESP_TYPES } from "redis";
import { log } from "../log.ts";

/** A Lua script, sent by its SHA-1 once Redis knows it. */
export interface Script {
  source: string;
  sha: string;
}

export function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

export type Arg = string | Buffer;

export interface RedisConnection {
  /** The URL without its password, for messages. */
  readonly where: string;
  /** Whether commands can be sent now (connected, not reconnecting). */
  readonly ready: boolean;
  /** One command; rejects within `timeout` ms, at once when Redis is unreachable. */
  command(args: Arg[], timeout?: number): Promise<unknown>;
  /** Runs a script; bulk replies come back as Buffers. */
  run(script: Script, keys: Arg[], args: Arg[], timeout?: number): Promise<unknown>;
  /** Called each time the connection is (re)established after it was lost. */
  onReconnect(listener: () => void): void;
  close(): Promise<void>;
}

/** Default bound of one command (ms): a cache lookup that waits longer reads storage instead. */
export const COMMAND_TIMEOUT = 1000;
const CONNECT_TIMEOUT = 5000;

/** Connects; rejects with one line when Redis cannot be reached or refuses the credentials. */
export async function connectRedis(url: string): Promise<RedisConnection> {
  const where = redactUrl(url);
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: CONNECT_TIMEOUT,
      // Quick at first, then every second: a restarted Redis is found again within a second.
      reconnectStrategy: (retries: number) => Math.min(20 * 2 ** retries, 1000),
    },
  });
  const typeMapping = { [RESP_TYPES.BLOB_STRING]: Buffer };
  const listeners: (() => void)[] = [];
  let lost = false;
  let lastError = "";
  client.on("error", (error: Error) => {
    // node-redis reconnects by itself; log once per outage, not once per attempt.
    if (!lost) log.warn("redis unreachable", { "redis.url": where, error: error.message });
    lost = true;
    lastError = error.message;
  });
  client.on("ready", () => {
    if (!lost) return;
    lost = false;
    log.info("redis reachable again", { "redis.url": where });
    for (const listener of listeners) listener();
  });
  try {
    await withTimeout(client.connect(), CONNECT_TIMEOUT, () => lastError || "timed out");
    await withTimeout(client.ping(), CONNECT_TIMEOUT, () => "no answer to PING");
  } catch (error) {
    client.destroy();
    throw new Error(`cannot use Redis at ${where}: ${(error as Error).message.split("\n")[0]}`);
  }
  lost = false;

  const command = (args: Arg[], timeout = COMMAND_TIMEOUT) =>
    client.sendCommand(args, { timeout, typeMapping }) as Promise<unknown>;

  return {
    where,
    get ready() {
      return client.isReady;
    },
    command,
    async run(script, keys, args, timeout = COMMAND_TIMEOUT) {
      const tail = [String(keys.length), ...keys, ...args];
      try {
        return await command(["EVALSHA", script.sha, ...tail], timeout);
      } catch (error) {
        if (!String((error as Error).message).includes("NOSCRIPT")) throw error;
        return await command(["EVAL", script.source, ...tail], timeout);
      }
    },
    onReconnect: (listener) => void listeners.push(listener),
    async close() {
      try {
        await client.close();
      } catch {
        client.destroy();
      }
    },
  };
}

/** `redis://user:secret@host/0` → `redis://user:***@host/0`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(invalid URL)";
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, reason: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(reason())), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
