// Starting and stopping the servers under test, each on a free loopback port,
// each logging to a file in its own temp dir (so the bench process does not
// spend CPU draining their logs while it measures).

import { HttpConn } from "./http.ts";
import { procName } from "./proc.ts";

export const HOST = "127.0.0.1";

export interface Server {
  key: string;
  label: string;
  port: number;
  /** PID of the server process itself (not a shell wrapper). */
  pid: number;
  dir: string;
  logPath: string;
  /** Extra ports (the sink's raw TCP port). */
  extra: Record<string, number>;
  version: string;
  stop(): Promise<void>;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function tail(path: string, n = 20): string {
  try {
    return Deno.readTextFileSync(path).split("\n").slice(-n).join("\n");
  } catch {
    return "";
  }
}

/**
 * Spawns `cmd args...` with stdout+stderr to logPath. `exec` replaces the
 * shell, so the child's PID is the server's own PID.
 */
export function spawnLogged(
  cmd: string,
  args: string[],
  logPath: string,
  cwd?: string,
  env?: Record<string, string>,
): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", 'log="$1"; shift; exec "$@" >"$log" 2>&1', "sh", logPath, cmd, ...args],
    cwd,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

function makeStop(
  child: Deno.ChildProcess,
  dir: string,
  keep: boolean,
): () => Promise<void> {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await child.status;
    clearTimeout(t);
    if (!keep) {
      try {
        await Deno.remove(dir, { recursive: true });
      } catch { /* ignore */ }
    }
  };
}

async function exited(
  child: Deno.ChildProcess,
  ms: number,
): Promise<Deno.CommandStatus | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    child.status,
    new Promise<null>((res) => timer = setTimeout(() => res(null), ms)),
  ]);
  clearTimeout(timer);
  return r;
}

async function waitHttpReady(
  port: number,
  child: Deno.ChildProcess,
  logPath: string,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < until && i < 10_000; i++) {
    const c = new HttpConn(HOST, port);
    try {
      const r = await c.request("GET", "/v2/");
      if (r.status === 200 || r.status === 401) return;
    } catch {
      /* not yet */
    } finally {
      c.close();
    }
    if (await exited(child, 100)) break;
  }
  throw new Error(`server on port ${port} did not start:\n${tail(logPath)}`);
}

/** The port a server logs in its `{"message":"listening","server":{"port"}}` line. */
async function listeningPort(
  child: Deno.ChildProcess,
  logPath: string,
  what: string,
): Promise<number> {
  const until = Date.now() + 60_000;
  for (let i = 0; Date.now() < until && i < 100_000; i++) {
    let text = "";
    try {
      text = await Deno.readTextFile(logPath);
    } catch { /* not yet */ }
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const o = JSON.parse(line);
        if (o.message === "listening") {
          const p = o.server?.port ?? o["server.port"] ?? o.port;
          if (typeof p === "number" && p > 0) return p;
        }
      } catch { /* not JSON */ }
    }
    if (await exited(child, 50)) throw new Error(`${what} exited early:\n${tail(logPath)}`);
  }
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  throw new Error(`${what} did not report listening:\n${tail(logPath)}`);
}

/** Simple Registry: deno run -A main.ts --host --port 0 --storage fs ... */
export async function startSimpleRegistry(
  mainTs: string,
  root: string,
  keep: boolean,
  /** More flags for the registry (e.g. --htpasswd for the auth section). */
  flags: string[] = [],
  /** The server's column: "sr", or "dist" for a second Simple Registry compared with the first. */
  key = "sr",
): Promise<Server> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "sr-" });
  const dataDir = `${dir}/data`;
  await Deno.mkdir(dataDir);
  const logPath = `${dir}/server.log`;
  const deno = Deno.execPath();
  const args = [
    "run",
    "-A",
    mainTs,
    "--host",
    HOST,
    "--port",
    "0",
    "--storage",
    "fs",
    "--data-dir",
    dataDir,
    ...flags,
  ];
  const extraArgs = Deno.env.get("BENCH_SR_ARGS");
  if (extraArgs) args.splice(2, 0, ...extraArgs.split(" ").filter(Boolean));
  // Registry flags after ours, so they win (e.g. "--storage memory", to leave the disk out).
  const extraFlags = Deno.env.get("BENCH_SR_FLAGS");
  if (extraFlags) args.push(...extraFlags.split(" ").filter(Boolean));
  const child = spawnLogged(deno, args, logPath, dir);
  const port = await listeningPort(child, logPath, "Simple Registry");
  await waitHttpReady(port, child, logPath);
  const name = procName(child.pid);
  if (name !== "deno") {
    throw new Error(`expected the registry PID ${child.pid} to be deno, got ${name}`);
  }
  return {
    key,
    label: "Simple Registry",
    port,
    pid: child.pid,
    dir,
    logPath,
    extra: {},
    version: Deno.version.deno,
    stop: makeStop(child, dir, keep),
  };
}

export const DIST_BIN = "/usr/bin/docker-registry";

export function distInstalled(): boolean {
  try {
    return Deno.statSync(DIST_BIN).isFile;
  } catch {
    return false;
  }
}

/** CNCF distribution (Debian's docker-registry) with its own config. */
export async function startDistribution(
  root: string,
  keep: boolean,
  cache: boolean,
  /** More top-level config lines (e.g. an `auth:` block for the auth section). */
  config: string[] = [],
): Promise<Server> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "dist-" });
  const port = freePort();
  const cfg = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    ...(cache ? ["  cache:", "    blobdescriptor: inmemory"] : []),
    "  filesystem:",
    `    rootdirectory: ${dir}/data`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: ${HOST}:${port}`,
    ...config,
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/config.yml`, cfg);
  const logPath = `${dir}/server.log`;
  const child = spawnLogged(DIST_BIN, ["serve", `${dir}/config.yml`], logPath, dir);
  await waitHttpReady(port, child, logPath);
  let version = "?";
  try {
    const o = await new Deno.Command(DIST_BIN, { args: ["--version"] })
      .output();
    version = new TextDecoder().decode(o.stdout).trim();
  } catch { /* ignore */ }
  return {
    key: "dist",
    label: "distribution",
    port,
    pid: child.pid,
    dir,
    logPath,
    extra: {},
    version,
    stop: makeStop(child, dir, keep),
  };
}

/** The trivial sinks (bench/sink.ts) in their own process. */
/** bench/relay.ts in front of `upstream`: a bare relay, or one that hashes and stores (`store`). */
export async function startRelay(
  root: string,
  upstream: string,
  store: boolean,
  keep: boolean,
): Promise<Server> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "relay-" });
  const logPath = `${dir}/relay.log`;
  const relayTs = new URL("./relay.ts", import.meta.url).pathname;
  const args = ["run", "-A", relayTs, "--upstream", upstream, "--dir", `${dir}/blobs`];
  const child = spawnLogged(Deno.execPath(), store ? [...args, "--store"] : args, logPath, dir);
  const port = await listeningPort(child, logPath, "relay");
  await waitHttpReady(port, child, logPath);
  return {
    key: store ? "relay-store" : "relay",
    label: store ? "relay, hashed and stored" : "bare relay",
    port,
    pid: child.pid,
    dir,
    logPath,
    extra: {},
    version: Deno.version.deno,
    stop: makeStop(child, dir, keep),
  };
}

export async function startSink(
  root: string,
  fileSize: number,
  keep: boolean,
): Promise<Server> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "sink-" });
  const filePath = `${dir}/blob`;
  // A file of fileSize bytes for the file-stream ceiling, written from one buffer.
  await writeRepeated(filePath, fileSize, new Uint8Array(8 << 20).fill(0x5a));
  const logPath = `${dir}/sink.log`;
  const sinkTs = new URL("./sink.ts", import.meta.url).pathname;
  const child = spawnLogged(
    Deno.execPath(),
    ["run", "-A", sinkTs, "--file", filePath, "--dir", `${dir}/durable`],
    logPath,
    dir,
  );
  let ports: { server: number; raw: number } | null = null;
  for (let i = 0; !ports && i < 600; i++) {
    try {
      const line = (await Deno.readTextFile(logPath)).split("\n")[0];
      const o = JSON.parse(line);
      ports = { server: o.server.port, raw: o.raw.port };
    } catch { /* not yet */ }
    if (!ports && await exited(child, 50)) break;
  }
  if (!ports) throw new Error(`sink did not start:\n${tail(logPath)}`);
  await waitHttpReady(ports.server, child, logPath);
  return {
    key: "sink",
    label: "Deno.serve sink",
    port: ports.server,
    pid: child.pid,
    dir,
    logPath,
    extra: { raw: ports.raw },
    version: Deno.version.deno,
    stop: makeStop(child, dir, keep),
  };
}

/** Writes `bytes` bytes to `path` by repeating one buffer; flushed to disk when `sync`. */
export async function writeRepeated(
  path: string,
  bytes: number,
  chunk: Uint8Array,
  sync = false,
): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let left = bytes; left > 0;) {
    const n = Math.min(left, chunk.length);
    for (let o = 0; o < n;) o += await f.write(chunk.subarray(o, n));
    left -= n;
  }
  if (sync) await f.syncData();
}
