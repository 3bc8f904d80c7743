// Shared machinery of the interoperability suite (issue 3): finding the real clients, starting a
// registry under test (Simple Registry, or Debian's docker-registry = CNCF distribution 2.8),
// running named steps whose failures carry the client's stderr and the registry's request log,
// OCI image-layout helpers, hashing, plain-HTTP pushes and tiny assertions.
//
// Run: `deno test -A tests/interop/`. Environment knobs:
// - INTEROP_REGISTRY=distribution  run the cases against Debian's docker-registry instead of
//                                  Simple Registry (how the suite was developed; no referrers there)
// - INTEROP_BIG_LAYER_MIB=N        size of case 4's big layer file (default 256)
// - INTEROP_KEEP_LOGS=DIR          keep every registry's full log in DIR
// - CI=true                        a missing client fails its case instead of skipping it

import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import {
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
} from "../../src/oci/manifest.ts";
import { envVar, sendSignal } from "../helpers.ts";

// ---------------------------------------------------------------------------------------------
// Where things are, what is targeted

/** Repository root, found from this file (never from the working directory). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));
export const MAIN_TS: string = fileURLToPath(new URL("../../main.ts", import.meta.url));

export type RegistryKind = "simple" | "distribution";
export type StorageKind = "fs" | "memory" | "s3";
/** s3 joins when S3_ENDPOINT is set (scripts/ceph/start.sh), for Simple Registry only. */
export const STORAGES: readonly StorageKind[] =
  envVar("S3_ENDPOINT") && envVar("INTEROP_REGISTRY") !== "distribution"
    ? ["fs", "memory", "s3"]
    : ["fs", "memory"];

/**
 * The registry under test: Simple Registry (`main.ts`) unless `INTEROP_REGISTRY=distribution`,
 * which runs the same cases against Debian's docker-registry (used to develop the suite).
 */
export const TARGET: RegistryKind = (() => {
  const v = envVar("INTEROP_REGISTRY") ?? "simple";
  if (v !== "simple" && v !== "distribution") {
    throw new Error(
      `INTEROP_REGISTRY must be "simple" or "distribution", not ${JSON.stringify(v)}`,
    );
  }
  return v;
})();

/** What the target implements beyond what every registry here does. */
export const TARGET_HAS_REFERRERS: boolean = TARGET === "simple"; // distribution 2.8 has no referrers API

export const IN_CI: boolean = envVar("CI") === "true";

// ---------------------------------------------------------------------------------------------
// Clients

export const CLIENTS = {
  skopeo: { bin: "skopeo", pkg: "skopeo" },
  umoci: { bin: "umoci", pkg: "umoci" },
  podman: { bin: "podman", pkg: "podman" },
  docker: { bin: "docker", pkg: "docker.io" }, // the CLI; case 9 starts its own engine (dockerd.ts)
  "docker-registry": { bin: "docker-registry", pkg: "docker-registry" },
  containerd: { bin: "containerd", pkg: "containerd" }, // the daemon, run privately per case
  ctr: { bin: "ctr", pkg: "containerd" },
} as const;
export type Client = keyof typeof CLIENTS;

/** Absolute path of an executable on PATH, or undefined. */
export function which(bin: string): string | undefined {
  for (const dir of (envVar("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const path = `${dir}/${bin}`;
    try {
      const st = Deno.statSync(path);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The clients a case needs, plus what starting the target registry needs. */
function withTarget(clients: readonly Client[], registry = true): Client[] {
  const all = new Set<Client>(clients);
  if (registry && TARGET === "distribution") all.add("docker-registry");
  return [...all];
}

function missingMessage(missing: readonly Client[]): string {
  return missing.map((c) =>
    `${CLIENTS[c].bin} not found on PATH (install Debian package ${CLIENTS[c].pkg})`
  )
    .join("; ");
}

/** The clients (and the reference registry, if asked) not installed on this machine. */
function missingClients(clients: readonly Client[], registry?: boolean): Client[] {
  return withTarget(clients, registry).filter((c) => which(CLIENTS[c].bin) === undefined);
}

/**
 * The `ignore` option of a Deno.test, computed up front: true (skip, with a message naming the
 * Debian package) when a client is missing on a developer machine; never true under CI=true,
 * where the case runs and fails on the missing client instead (see Session.open).
 */
export function skipUnless(
  caseName: string,
  clients: readonly Client[],
  opts: { registry?: boolean } = {},
): boolean {
  const missing = missingClients(clients, opts.registry);
  if (missing.length === 0 || IN_CI) return false;
  const msg = `interop: SKIPPING "${caseName}": ${missingMessage(missing)}`;
  if (!warned.has(msg)) console.warn(msg);
  warned.add(msg);
  return true;
}
const warned = new Set<string>();

// ---------------------------------------------------------------------------------------------
// Assertions

export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

export function assertEquals<T>(actual: T, expected: T, msg: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(`${msg}\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Hashing

export function sha256Of(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  using file = await Deno.open(path, { read: true });
  return await sha256Stream(file.readable);
}

export async function sha256Stream(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Last `max` characters of a text, with a marker when cut. */
function tail(text: string, max: number): string {
  return text.length <= max
    ? text
    : `[... ${text.length - max} characters cut ...]\n${text.slice(-max)}`;
}

function quote(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(
    " ",
  );
}

export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    readonly args: readonly string[],
    readonly result: CommandResult | undefined,
    why: string,
  ) {
    super(
      `command failed (${why}): ${quote(args)}\n` +
        `--- ${args[0]} stderr ---\n${tail(result?.stderr ?? "", 12000) || "(empty)"}\n` +
        `--- ${args[0]} stdout ---\n${tail(result?.stdout ?? "", 3000) || "(empty)"}`,
    );
  }
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Exit codes taken as success (default: only 0). Use `expectFailure` to want a failure. */
  okCodes?: number[];
  expectFailure?: boolean;
  timeoutMs?: number;
}

/** Runs a command to its end; throws a CommandError with its stderr unless it did as expected. */
export async function runCommand(
  args: readonly string[],
  opts: RunOptions = {},
): Promise<CommandResult> {
  const child = new Deno.Command(args[0], {
    args: args.slice(1),
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    sendSignal(child, "SIGKILL");
  }, opts.timeoutMs ?? 120_000);
  let out: Deno.CommandOutput;
  try {
    out = await child.output();
  } finally {
    clearTimeout(timer);
  }
  const dec = new TextDecoder();
  const result = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (timedOut) {
    throw new CommandError(args, result, `killed after ${opts.timeoutMs ?? 120_000} ms`);
  }
  const ok = (opts.okCodes ?? [0]).includes(out.code);
  if (opts.expectFailure) {
    if (out.code === 0) {
      throw new CommandError(args, result, "exit code 0 where a failure was expected");
    }
  } else if (!ok) {
    throw new CommandError(
      args,
      result,
      `exit code ${out.code}${out.signal ? `, signal ${out.signal}` : ""}`,
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Registries

export interface RequestLine {
  method: string;
  path: string;
  query: string;
  status: number;
}

/** The request fields of one log line of either registry, or undefined for other lines. */
export function parseRequestLine(line: string): RequestLine | undefined {
  const obj = jsonObject(line);
  if (!obj) return undefined;
  const method = obj["http.request.method"];
  const status = Number(obj["http.response.status"]);
  if (typeof method !== "string" || !Number.isFinite(status)) return undefined;
  let path = typeof obj["url.path"] === "string" ? obj["url.path"] as string : "";
  let query = typeof obj["url.query"] === "string" ? obj["url.query"] as string : "";
  const uri = obj["http.request.uri"] ?? obj["url.full"] ?? obj["url.original"];
  if (typeof uri === "string") {
    const u = new URL(uri, "http://x");
    if (!path) path = u.pathname;
    if (!query) query = u.search.replace(/^\?/, "");
  }
  return { method, path, query: query.replace(/^\?/, ""), status };
}

export interface StartOptions {
  kind?: RegistryKind;
  storage: StorageKind;
  /** Parent directory for the registry's data and config (a session's temp dir). */
  dir: string;
  label?: string;
  /**
   * Starts Simple Registry with this command instead of `main.ts` with flags (the README's own
   * command, say): given the fresh data dir, the command line, its cwd and extra environment.
   */
  command?: (dataDir: string) => { args: string[]; cwd: string; env: Record<string, string> };
  /** Simple Registry: more flags (auth, a mirror's upstreams), and environment variables. */
  args?: string[];
  env?: Record<string, string>;
  /** distribution: Basic auth with this htpasswd file (bcrypt entries). */
  htpasswd?: string;
}

/** A registry process on 127.0.0.1; everything it prints is kept, line by line. */
export class RegistryProcess implements AsyncDisposable {
  readonly lines: string[] = [];
  #child: Deno.ChildProcess | undefined;
  #pumps: Promise<unknown>[] = [];
  #status: Promise<Deno.CommandStatus> | undefined;
  #exited = false;
  host = "";
  /** Its data directory (distribution keeps blobs under `storage/docker/registry/v2/`). */
  dataDir = "";

  private constructor(
    readonly kind: RegistryKind,
    readonly storage: StorageKind,
    readonly label: string,
  ) {}

  get url(): string {
    return `http://${this.host}`;
  }

  /** Position in the log, to get what came after with linesSince / requestsSince. */
  mark(): number {
    return this.lines.length;
  }

  linesSince(mark: number): string[] {
    return this.lines.slice(mark);
  }

  requestsSince(mark: number): RequestLine[] {
    return this.linesSince(mark).map(parseRequestLine).filter((r): r is RequestLine =>
      r !== undefined
    );
  }

  get exited(): boolean {
    return this.#exited;
  }

  static async start(opts: StartOptions): Promise<RegistryProcess> {
    const kind = opts.kind ?? TARGET;
    const label = opts.label ?? `${kind}/${opts.storage}`;
    const reg = new RegistryProcess(kind, opts.storage, label);
    const dataDir = await Deno.makeTempDir({ dir: opts.dir, prefix: `${kind}-${opts.storage}-` });
    reg.dataDir = dataDir;
    let args: string[];
    if (kind === "simple") {
      try {
        await Deno.stat(MAIN_TS);
      } catch {
        throw new Error(`cannot start Simple Registry: ${MAIN_TS} does not exist`);
      }
      // The repository's deno.json (import map, lock file) even though cwd is the data dir.
      const config = `${REPO_ROOT}deno.json`;
      const hasConfig = await Deno.stat(config).then(() => true, () => false);
      args = [
        Deno.execPath(),
        "run",
        "-A",
        ...(hasConfig ? ["--config", config] : []),
        MAIN_TS,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--storage",
        opts.storage,
        "--data-dir",
        dataDir,
        // A fresh prefix of the test bucket; the throw-away Ceph cluster goes with its data.
        ...(opts.storage === "s3"
          ? [
            "--s3-endpoint",
            envVar("S3_ENDPOINT")!,
            "--s3-bucket",
            envVar("S3_BUCKET") ?? "registry",
            "--s3-prefix",
            `interop-${crypto.randomUUID()}`,
            "--s3-access-key",
            envVar("S3_ACCESS_KEY") ?? "",
            "--s3-secret-key",
            envVar("S3_SECRET_KEY") ?? "",
          ]
          : []),
        ...opts.args ?? [],
      ];
    } else {
      const bin = which(CLIENTS["docker-registry"].bin);
      if (!bin) throw new Error(missingMessage(["docker-registry"]));
      const storage = opts.storage === "fs"
        ? `  filesystem:\n    rootdirectory: ${JSON.stringify(`${dataDir}/storage`)}\n`
        : `  inmemory: {}\n`;
      const auth = opts.htpasswd
        ? `auth:\n  htpasswd:\n    realm: interop\n    path: ${JSON.stringify(opts.htpasswd)}\n`
        : "";
      const config = `version: 0.1\n` +
        `log:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n` +
        `storage:\n${storage}  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n` +
        `http:\n  addr: 127.0.0.1:0\n  secret: interop-test-secret\n` + auth;
      const configPath = `${dataDir}/config.yml`;
      await Deno.writeTextFile(configPath, config);
      args = [bin, "serve", configPath];
    }
    const custom = opts.command?.(dataDir);
    if (custom) args = custom.args;
    const child = new Deno.Command(args[0], {
      args: args.slice(1),
      cwd: custom?.cwd ?? dataDir,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...opts.env, ...custom?.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    reg.#child = child;
    reg.#status = child.status.then((s) => {
      reg.#exited = true;
      return s;
    });

    const { promise: listening, resolve, reject } = Promise.withResolvers<string>();
    const onLine = (line: string) => {
      reg.lines.push(line);
      const host = listeningHost(kind, line);
      if (host) resolve(host);
    };
    reg.#pumps = [pumpLines(child.stdout, onLine), pumpLines(child.stderr, onLine)];
    reg.#status.then((s) => reject(new Error(`${label} exited (code ${s.code}) before listening`)));
    const timer = setTimeout(
      () => reject(new Error(`${label} did not report listening within 60 s`)),
      60_000,
    );
    try {
      reg.host = await listening;
    } catch (e) {
      await reg.stop();
      throw new Error(
        `${(e as Error).message}: ${quote(args)}\n--- its output ---\n${
          tail(reg.lines.join("\n"), 8000)
        }`,
      );
    } finally {
      clearTimeout(timer);
    }
    return reg;
  }

  /** SIGKILL at once (a registry that dies), and waits for it to be gone. */
  async kill(): Promise<void> {
    if (this.#child && !this.#exited) sendSignal(this.#child, "SIGKILL");
    await this.#status;
  }

  /** SIGTERM, then SIGKILL if it has not exited after 10 s. Returns the exit status. */
  async stop(): Promise<Deno.CommandStatus | undefined> {
    const child = this.#child;
    if (!child || !this.#status) return undefined;
    if (!this.#exited) sendSignal(child, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killer = new Promise<void>((res) => {
      timer = setTimeout(() => {
        if (!this.#exited) sendSignal(child, "SIGKILL");
        res();
      }, 10_000);
    });
    const status = await Promise.race([this.#status, killer.then(() => this.#status!)]);
    clearTimeout(timer);
    await Promise.allSettled(this.#pumps);
    this.#child = undefined;
    const keep = envVar("INTEROP_KEEP_LOGS"); // a directory: keep every registry's log there
    if (keep) {
      await Deno.mkdir(keep, { recursive: true });
      const file = `${keep}/${this.label.replaceAll(/[^\w.-]+/g, "_")}-${
        this.host.split(":")[1]
      }.log`;
      await Deno.writeTextFile(file, this.lines.join("\n") + "\n");
    }
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A log line as a JSON object, or undefined for any other line. */
function jsonObject(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line);
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

function listeningHost(kind: RegistryKind, line: string): string | undefined {
  const obj = jsonObject(line);
  if (!obj) return undefined;
  if (kind === "simple") {
    if (obj.message !== "listening" && obj.msg !== "listening") return undefined;
    const port = Number(obj["server.port"]);
    return Number.isInteger(port) && port > 0 ? `127.0.0.1:${port}` : undefined;
  }
  const m = typeof obj.msg === "string" ? /^listening on (127\.0\.0\.1:\d+)$/.exec(obj.msg) : null;
  return m?.[1];
}

async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  if (buf) onLine(buf);
}

/** A skopeo docker:// reference to `ref` ("repo:tag" or "repo@digest") in a registry. */
export function dockerRef(reg: RegistryProcess, ref: string): string {
  return `docker://${reg.host}/${ref}`;
}

// ---------------------------------------------------------------------------------------------
// Sessions: one per test case

export class StepFailure extends Error {
  override name = "StepFailure";
}

function formatLogLine(line: string): string {
  return line.length > 1000 ? `${line.slice(0, 1000)} [...]` : line;
}

/**
 * One test case: a temp dir (removed at the end), isolated client configuration, the registries
 * it started (stopped at the end), and named steps. A failing step throws a StepFailure naming
 * the step, with the client's stderr (from CommandError) and every registry's log since the step
 * started.
 */
export class Session implements AsyncDisposable {
  readonly registries: RegistryProcess[] = [];
  /** Cleanups of other processes a case started (a containerd), run before the registries stop. */
  readonly #deferred: (() => Promise<void>)[] = [];
  readonly env: Record<string, string>;
  #stepDepth = 0;

  private constructor(readonly t: Deno.TestContext, readonly dir: string) {
    this.env = {
      TMPDIR: `${dir}/tmp`,
      DOCKER_CONFIG: `${dir}/docker-config`,
      REGISTRY_AUTH_FILE: `${dir}/containers/auth.json`,
      CONTAINERS_REGISTRIES_CONF: `${dir}/containers/registries.conf`,
      CONTAINERS_CONF: `${dir}/containers/containers.conf`,
      CONTAINERS_STORAGE_CONF: `${dir}/containers/storage.conf`,
      XDG_CONFIG_HOME: `${dir}/xdg-config`,
      NO_COLOR: "1",
    };
  }

  /** Starts a case; under CI a missing client fails it here (elsewhere it was skipped up front). */
  static async open(
    t: Deno.TestContext,
    clients: readonly Client[],
    opts: { registry?: boolean } = {},
  ): Promise<Session> {
    const missing = missingClients(clients, opts.registry);
    if (missing.length > 0) {
      throw new Error(
        `missing client(s): ${missingMessage(missing)}` +
          (IN_CI ? " (CI=true: a missing client fails the case instead of skipping it)" : ""),
      );
    }
    const dir = await Deno.makeTempDir({ prefix: "interop-" });
    const s = new Session(t, dir);
    const c = `${dir}/containers`;
    for (
      const d of [`${dir}/tmp`, `${dir}/docker-config`, c, `${c}/registries.d`, `${dir}/xdg-config`]
    ) {
      await Deno.mkdir(d, { recursive: true });
    }
    await Deno.writeTextFile(`${c}/auth.json`, `{"auths":{}}\n`);
    await Deno.writeTextFile(
      `${c}/policy.json`,
      `{"default":[{"type":"insecureAcceptAnything"}]}\n`,
    );
    await Deno.writeTextFile(`${c}/registries.conf`, `unqualified-search-registries = []\n`);
    await Deno.writeTextFile(
      `${c}/containers.conf`,
      `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n`,
    );
    await Deno.writeTextFile(
      `${c}/storage.conf`,
      `[storage]\ndriver = "vfs"\nrunroot = "${dir}/podman/run"\ngraphroot = "${dir}/podman/root"\n`,
    );
    return s;
  }

  /** Starts a registry (the target unless `kind` says otherwise), stopped with the session. */
  async registry(
    storage: StorageKind,
    opts: Omit<StartOptions, "storage" | "dir"> = {},
  ): Promise<RegistryProcess> {
    const reg = await RegistryProcess.start({ storage, dir: this.dir, ...opts });
    this.registries.push(reg);
    return reg;
  }

  /**
   * Runs `fn` as a named Deno test step. On failure the step's error names the step and carries
   * the registries' log lines since the step started; the case then stops. Unless
   * `allowServerErrors` (a step that expects a 502/503), no registry may answer 5xx meanwhile.
   */
  async step<T>(
    name: string,
    fn: () => Promise<T>,
    opts: { allowServerErrors?: boolean } = {},
  ): Promise<T> {
    const marks = new Map(this.registries.map((r) => [r, r.mark()]));
    const exitedBefore = new Set(this.registries.filter((r) => r.exited));
    const started = performance.now();
    let result: T | undefined;
    let failure: StepFailure | undefined;
    const body = async () => {
      try {
        result = await fn();
        if (!opts.allowServerErrors) this.#checkRegistriesHealthy(marks, exitedBefore);
      } catch (e) {
        failure = new StepFailure(this.#describeFailure(name, e, marks, started));
        throw failure;
      }
    };
    if (this.#stepDepth > 0) {
      await body();
      return result as T;
    }
    this.#stepDepth++;
    let ok: boolean;
    try {
      ok = await this.t.step({ name, fn: body, sanitizeOps: false, sanitizeResources: false });
    } finally {
      this.#stepDepth--;
    }
    if (!ok) {
      // The step's own report (client stderr, registry log) is printed with the step.
      throw new StepFailure(
        failure
          ? `step "${name}" failed (its report is printed with the step above)`
          : `step "${name}" failed`,
      );
    }
    return result as T;
  }

  /** No registry may answer 5xx or die during a step, whatever the clients made of it. */
  #checkRegistriesHealthy(
    marks: Map<RegistryProcess, number>,
    exitedBefore: Set<RegistryProcess>,
  ): void {
    for (const reg of this.registries) {
      if (exitedBefore.has(reg)) continue; // stopped on purpose by an earlier step
      const errors = reg.requestsSince(marks.get(reg) ?? 0).filter((r) => r.status >= 500);
      assert(
        errors.length === 0,
        `registry ${reg.label} answered ${errors.length} request(s) with 5xx: ` +
          errors.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ""} -> ${r.status}`)
            .join(", "),
      );
      assert(!reg.exited, `registry ${reg.label} exited during the step`);
    }
  }

  #describeFailure(
    name: string,
    e: unknown,
    marks: Map<RegistryProcess, number>,
    started: number,
  ): string {
    const err = e instanceof Error ? e : new Error(String(e));
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    let msg = `STEP FAILED: "${name}" (after ${secs} s)\n${err.name}: ${err.message}\n`;
    for (const reg of this.registries) {
      const lines = reg.linesSince(marks.get(reg) ?? 0);
      const shown = lines.slice(-200).map(formatLogLine);
      msg += `--- registry ${reg.label} at ${reg.host}${reg.exited ? " (EXITED)" : ""}: ` +
        `${lines.length} log line(s) since the step started` +
        `${lines.length > shown.length ? `, last ${shown.length} shown` : ""} ---\n` +
        (shown.length ? shown.join("\n") : "(none)") + "\n";
    }
    return msg;
  }

  /** Runs a command with the session's isolated client environment. */
  run(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    return runCommand(args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  skopeo(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const c = `${this.dir}/containers`;
    return this.run([
      "skopeo",
      "--policy",
      `${c}/policy.json`,
      "--registries.d",
      `${c}/registries.d`,
      ...args,
    ], opts);
  }

  /** skopeo copy; plain-http registries on 127.0.0.1 get --src/--dest-tls-verify=false. */
  skopeoCopy(src: string, dst: string, extra: readonly string[] = []): Promise<CommandResult> {
    const flags: string[] = [];
    if (src.startsWith("docker://")) flags.push("--src-tls-verify=false");
    if (dst.startsWith("docker://")) flags.push("--dest-tls-verify=false");
    return this.skopeo(["copy", ...flags, ...extra, src, dst], { timeoutMs: 240_000 });
  }

  umoci(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    return this.run(["umoci", ...args], opts);
  }

  /** podman as root with a private vfs store, cgroupfs, no events. */
  podman(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const p = `${this.dir}/podman`;
    return this.run([
      "podman",
      "--root",
      `${p}/root`,
      "--runroot",
      `${p}/run`,
      "--tmpdir",
      `${p}/tmp`,
      "--storage-driver",
      "vfs",
      "--cgroup-manager",
      "cgroupfs",
      "--events-backend",
      "none",
      ...args,
    ], opts);
  }

  /** Policy file for podman's hidden --signature-policy flag. */
  get policyPath(): string {
    return `${this.dir}/containers/policy.json`;
  }

  docker(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    return this.run(["docker", ...args], opts);
  }

  /** Runs `cleanup` when the case ends (last deferred first), before the registries stop. */
  defer(cleanup: () => Promise<void>): void {
    this.#deferred.push(cleanup);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of this.#deferred.reverse()) {
      try {
        await cleanup();
      } catch (e) {
        errors.push(e);
      }
    }
    for (const reg of this.registries.reverse()) {
      try {
        await reg.stop();
      } catch (e) {
        errors.push(e);
      }
    }
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch (e) {
      errors.push(e);
    }
    if (errors.length) console.error("interop: cleanup problems:", ...errors);
  }
}

// ---------------------------------------------------------------------------------------------
// OCI image layout

export const MT = {
  manifest: OCI_MANIFEST,
  index: OCI_INDEX,
  config: OCI_CONFIG,
  layerGzip: OCI_LAYER,
  empty: OCI_EMPTY,
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
  artifactType?: string;
  data?: string;
}

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

const REF_NAME = "org.opencontainers.image.ref.name";

export function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  return `${layout}/blobs/${alg}/${hex}`;
}

export function readBlob(layout: string, digest: string): Promise<Uint8Array> {
  return Deno.readFile(blobPath(layout, digest));
}

export async function readJsonBlob<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await readBlob(layout, digest))) as T;
}

export async function readLayoutIndex(layout: string): Promise<Index> {
  return JSON.parse(await Deno.readTextFile(`${layout}/index.json`)) as Index;
}

/** The descriptor that index.json names `ref`. */
export async function layoutRef(layout: string, ref: string): Promise<Descriptor> {
  const idx = await readLayoutIndex(layout);
  const found = idx.manifests.filter((d) => d.annotations?.[REF_NAME] === ref);
  assert(
    found.length === 1,
    `${layout}/index.json has ${found.length} entries named ${ref}: ${show(idx)}`,
  );
  return found[0];
}

/** Writes bytes as a blob of the layout; returns its descriptor. */
export async function writeBlob(
  layout: string,
  mediaType: string,
  data: Uint8Array | string,
): Promise<Descriptor> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = sha256Of(bytes);
  await Deno.mkdir(`${layout}/blobs/sha256`, { recursive: true });
  await Deno.writeFile(blobPath(layout, digest), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** Adds (or replaces) a named entry of index.json. */
export async function setLayoutRef(layout: string, ref: string, desc: Descriptor): Promise<void> {
  const idx = await readLayoutIndex(layout);
  idx.manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME] !== ref);
  idx.manifests.push({
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    annotations: { [REF_NAME]: ref },
  });
  await Deno.writeTextFile(`${layout}/index.json`, JSON.stringify(idx));
}

export async function newLayout(layout: string): Promise<void> {
  await Deno.mkdir(`${layout}/blobs/sha256`, { recursive: true });
  await Deno.writeTextFile(`${layout}/oci-layout`, `{"imageLayoutVersion":"1.0.0"}`);
  await Deno.writeTextFile(
    `${layout}/index.json`,
    JSON.stringify({ schemaVersion: 2, manifests: [] }),
  );
}

/** Every digest reachable from a manifest or index of the layout (itself included), in order. */
export async function reachableDigests(layout: string, desc: Descriptor): Promise<string[]> {
  const out: string[] = [desc.digest];
  if (desc.mediaType === MT.index) {
    const idx = await readJsonBlob<Index>(layout, desc.digest);
    for (const m of idx.manifests) out.push(...await reachableDigests(layout, m));
  } else if (desc.mediaType === MT.manifest) {
    const m = await readJsonBlob<Manifest>(layout, desc.digest);
    out.push(m.config.digest, ...m.layers.map((l) => l.digest));
  }
  return out;
}

/** Checks that every blob file of the layout hashes to its name; returns how many there are. */
export async function verifyLayoutBlobs(layout: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(`${layout}/blobs/sha256`)) {
    const actual = await sha256File(`${layout}/blobs/sha256/${e.name}`);
    assertEquals(
      actual,
      `sha256:${e.name}`,
      `blob file ${layout}/blobs/sha256/${e.name} hashes differently`,
    );
    n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP against a registry

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** A readable account of one HTTP exchange, for failure messages. */
export function describeHttp(method: string, url: string, r: HttpResult): string {
  const headers = [...r.headers].map(([k, v]) => `${k}: ${v}`).join("\n  ");
  return `${method} ${url} -> ${r.status}\n  ${headers}\n  body: ${
    tail(new TextDecoder().decode(r.body), 2000)
  }`;
}

/** One HTTP exchange; the body is read to its end. Fails unless the status is one of `want`. */
export async function http(
  method: string,
  url: string,
  opts: {
    headers?: Record<string, string>;
    body?: Uint8Array<ArrayBuffer> | string;
    want?: number[];
  } = {},
): Promise<HttpResult> {
  const res = await fetch(url, {
    method,
    headers: opts.headers,
    body: opts.body,
    redirect: "follow",
  });
  const r = {
    status: res.status,
    headers: res.headers,
    body: new Uint8Array(await res.arrayBuffer()),
  };
  if (opts.want && !opts.want.includes(r.status)) {
    throw new AssertionError(
      `unexpected HTTP status, wanted ${opts.want.join(" or ")}:\n${describeHttp(method, url, r)}`,
    );
  }
  return r;
}

/** GET a blob and hash it as it streams; returns its digest and size. */
export async function hashRemoteBlob(
  base: string,
  repo: string,
  digest: string,
): Promise<{ digest: string; size: number }> {
  const url = `${base}/v2/${repo}/blobs/${digest}`;
  const res = await fetch(url);
  if (res.status !== 200 || !res.body) {
    const body = new Uint8Array(await res.arrayBuffer());
    throw new AssertionError(
      `GET blob failed:\n${
        describeHttp("GET", url, { status: res.status, headers: res.headers, body })
      }`,
    );
  }
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of res.body) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** Pushes a blob with POST + monolithic PUT (the plain OCI push flow). */
export async function pushBlob(
  base: string,
  repo: string,
  data: Uint8Array<ArrayBuffer> | string,
): Promise<Descriptor> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = sha256Of(bytes);
  const post = await http("POST", `${base}/v2/${repo}/blobs/uploads/`, { want: [202] });
  const location = post.headers.get("location");
  assert(
    location,
    `POST upload gave no Location:\n${
      describeHttp("POST", `${base}/v2/${repo}/blobs/uploads/`, post)
    }`,
  );
  const u = new URL(location, base);
  u.searchParams.set("digest", digest);
  await http("PUT", u.href, {
    headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) },
    body: bytes,
    want: [201],
  });
  return { mediaType: "application/octet-stream", digest, size: bytes.length };
}

/** GET a manifest: its exact bytes, digest and content type. */
export async function getManifest(
  base: string,
  repo: string,
  ref: string,
  accept: string = [MT.manifest, MT.index].join(", "),
): Promise<
  { bytes: Uint8Array; digest: string; contentType: string | null; headerDigest: string | null }
> {
  const r = await http("GET", `${base}/v2/${repo}/manifests/${ref}`, {
    headers: { accept },
    want: [200],
  });
  return {
    bytes: r.body,
    digest: sha256Of(r.body),
    contentType: r.headers.get("content-type"),
    headerDigest: r.headers.get("docker-content-digest"),
  };
}

export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
