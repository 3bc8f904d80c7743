// Shared test helpers: hand-written assertions, servers on fresh storage, a small registry client
// on fetch, and builders for OCI/Docker manifests and indexes. No std: everything is here.

import { createHash } from "node:crypto";
import { inspect, isDeepStrictEqual } from "node:util";
import type { Config } from "../src/config.ts";
import { type RunningServer, startServer } from "../src/server.ts";
import type { RedisSettings } from "../src/redis/shared.ts";
import type { Authorizer } from "../src/auth/types.ts";
import type { StorageDriver } from "../src/storage/driver.ts";
import { createFsDriver } from "../src/storage/fs.ts";
import { createMemoryDriver } from "../src/storage/memory.ts";
import { createS3Driver, type S3Driver, type S3Options } from "../src/storage/s3/driver.ts";
import type { Sections } from "../src/settings/sections.ts";
import type { OpsSettings } from "../src/ops/ops.ts";
import {
  type Descriptor,
  DOCKER_CONFIG,
  DOCKER_LAYER,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
} from "../src/oci/manifest.ts";

// ---------------------------------------------------------------------------------------------
// Assertions

export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

const show = (value: unknown) => inspect(value, { depth: 6, breakLength: 100 });

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Deep, strict equality (typed arrays compared by content). */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(
      `${message ? message + ": " : ""}values differ\n  actual:   ${show(actual)}\n  expected: ${
        show(expected)
      }`,
    );
  }
}

export function assertMatch(actual: string | null | undefined, pattern: RegExp, message?: string) {
  if (actual === null || actual === undefined || !pattern.test(actual)) {
    throw new AssertionError(
      `${message ? message + ": " : ""}${show(actual)} does not match ${pattern}`,
    );
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

function checkError(error: unknown, errorClass?: ErrorClass, includes?: string): Error {
  if (!(error instanceof Error)) throw new AssertionError(`thrown value is not an Error: ${error}`);
  if (errorClass && !(error instanceof errorClass)) {
    const { name, message } = error as Error;
    throw new AssertionError(`expected ${errorClass.name}, got ${name}: ${message}`);
  }
  if (includes !== undefined && !error.message.includes(includes)) {
    throw new AssertionError(`error message ${show(error.message)} lacks ${show(includes)}`);
  }
  return error;
}

/** The function must throw synchronously. */
export function assertThrows(fn: () => unknown, errorClass?: ErrorClass, includes?: string): Error {
  try {
    fn();
  } catch (error) {
    return checkError(error, errorClass, includes);
  }
  throw new AssertionError("expected the function to throw");
}

/** The function must return a promise that rejects (a synchronous throw fails the assertion). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  errorClass?: ErrorClass,
  includes?: string,
): Promise<Error> {
  let promise: Promise<unknown>;
  try {
    promise = fn();
  } catch (error) {
    throw new AssertionError(`expected a rejected promise, but it threw synchronously: ${error}`);
  }
  try {
    await promise;
  } catch (error) {
    return checkError(error, errorClass, includes);
  }
  throw new AssertionError("expected the promise to reject");
}

// ---------------------------------------------------------------------------------------------
// Bytes, digests, text

/** Bytes fetch accepts as a body. */
export type Bytes = Uint8Array<ArrayBuffer>;

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
export const bytes = (text: string): Uint8Array<ArrayBuffer> => encoder.encode(text);
export const text = (data: Uint8Array): string => decoder.decode(data);

export function digest(data: Uint8Array, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

/** Pseudo-random but reproducible bytes (seeded xorshift), so failures can be replayed. */
export function randomBytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Bytes> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A request body that fetch must send with chunked transfer encoding (no Content-Length). */
export function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks);
}

// ---------------------------------------------------------------------------------------------
// Temp dirs and servers

export interface TempDir extends AsyncDisposable {
  path: string;
}

export async function tempDir(prefix = "registry-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/**
 * A memory driver whose puts wait for `gate` (storage slower than its source), or fail
 * (`failWrites`: a full disk); `inner` is the driver beneath, to look at what was stored.
 */
export function gatedDriver(
  options: { gate?: Promise<void>; failWrites?: boolean } = {},
): { driver: StorageDriver; inner: StorageDriver } {
  const inner = createMemoryDriver();
  const driver: StorageDriver = {
    ...inner,
    async put(key, source, putOptions) {
      if (options.failWrites) throw new Error("disk full");
      await options.gate;
      return inner.put(key, source, putOptions);
    },
  };
  return { driver, inner };
}

export type DriverKind = "fs" | "memory" | "s3";

// ---------------------------------------------------------------------------------------------
// S3 (scripts/ceph/start.sh prints the variables)

/**
 * An environment variable, or undefined when unset or when the run may not read it: a bare
 * `deno test` (no -A) still loads these helpers, and the unit tests that need nothing else run.
 */
export function envVar(name: string): string | undefined {
  const allowed = Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
  return (allowed && Deno.env.get(name)) || undefined;
}

/** Under CI=true the S3 tests run even without S3_ENDPOINT, and fail: CI must provide S3. */
export const S3_REQUIRED = envVar("CI") === "true";

/**
 * S3 settings from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_BUCKET; undefined
 * when S3_ENDPOINT is unset.
 */
export const S3_SETTINGS: Omit<S3Options, "prefix"> | undefined = (() => {
  const env = envVar;
  const endpoint = env("S3_ENDPOINT");
  if (!endpoint) return undefined;
  return {
    endpoint,
    bucket: env("S3_BUCKET") ?? "registry",
    region: env("S3_REGION") ?? "us-east-1",
    pathStyle: true,
    accessKeyId: env("S3_ACCESS_KEY") ?? env("AWS_ACCESS_KEY_ID") ?? "",
    secretAccessKey: env("S3_SECRET_KEY") ?? env("AWS_SECRET_ACCESS_KEY") ?? "",
  };
})();

/** Why S3 tests are skipped, for `Deno.test({ ignore })` callers to print once. */
export const S3_SKIP_REASON = "S3_ENDPOINT is unset: S3 tests skipped (run scripts/ceph/start.sh)";

/** S3 tests are ignored only outside CI when no S3 is configured. */
export const S3_IGNORE = !S3_SETTINGS && !S3_REQUIRED;

export const DRIVER_KINDS: readonly DriverKind[] = S3_IGNORE ? ["fs", "memory"] : [
  "fs",
  "memory",
  "s3",
];

export interface S3Fixture extends AsyncDisposable {
  driver: S3Driver;
  /** The fresh key prefix this fixture owns (deleted on dispose). */
  prefix: string;
}

/** An S3 driver on a fresh prefix of the test bucket; everything under it goes on dispose. */
export function s3Fixture(options: Partial<S3Options> = {}): S3Fixture {
  if (!S3_SETTINGS) {
    throw new Error("S3_ENDPOINT is unset (CI=true needs S3): run scripts/ceph/start.sh first");
  }
  const prefix = options.prefix ?? `test-${crypto.randomUUID()}`;
  const driver = createS3Driver({ ...S3_SETTINGS, ...options, prefix });
  return {
    driver,
    prefix,
    [Symbol.asyncDispose]: () => createS3Driver({ ...S3_SETTINGS!, prefix: "" }).delete(prefix),
  };
}

export interface TestServer extends AsyncDisposable {
  kind: DriverKind;
  url: string;
  server: RunningServer;
  driver: StorageDriver;
  /** The fs driver's root (a fresh temp dir unless one was given). */
  dataDir?: string;
  client: RegistryClient;
}

/**
 * A listening server on 127.0.0.1:0 with fresh storage. `dataDir` reuses a directory (restart
 * tests; the caller then owns it); otherwise an fs server's temp dir is removed on dispose.
 */
interface ServerOptions {
  deleteEnabled?: boolean;
  /** Upload-session TTL in ms (default 24 h). */
  uploadTtl?: number;
  /** Bytes of small request bodies held at once (src/app.ts). */
  bodyBudget?: number;
  /** --trusted-proxies: peers whose X-Forwarded-* headers are believed. */
  trustedProxies?: string[];
  /** --read-only and the config file's policies (src/policy). */
  readOnly?: boolean;
  sections?: Sections;
  /** Metrics, health, events, audit log, tracing (src/ops/ops.ts). */
  ops?: OpsSettings;
  /** Reloads: the settings it starts with and what a reload reads (src/settings/reload.ts). */
  settings?: { initial: Config; load: () => Promise<Config> };
  /** --redis (tests/redis_helpers.ts starts one). */
  redis?: RedisSettings;
  /** --s3-redirect. */
  s3Redirect?: { minSize: number };
  /** Auth (src/auth); absent: open. */
  auth?: Authorizer;
}

export async function withServer(
  kind: DriverKind,
  options: ServerOptions & { dataDir?: string; driver?: StorageDriver } = {},
): Promise<TestServer> {
  const owned = kind === "fs" && !options.dataDir && !options.driver ? await tempDir() : undefined;
  const dataDir = kind === "fs" ? options.dataDir ?? owned?.path : undefined;
  const s3 = kind === "s3" && !options.driver ? s3Fixture() : undefined;
  const driver = options.driver ??
    (kind === "fs" ? createFsDriver(dataDir!) : s3 ? s3.driver : createMemoryDriver());
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: options.deleteEnabled ?? true,
    uploadTtl: options.uploadTtl,
    bodyBudget: options.bodyBudget,
    trustedProxies: options.trustedProxies,
    readOnly: options.readOnly,
    sections: options.sections,
    ops: options.ops,
    settings: options.settings,
    redis: options.redis,
    s3Redirect: options.s3Redirect,
    auth: options.auth,
    driver,
  });
  return {
    kind,
    url: server.url,
    server,
    driver,
    dataDir,
    client: registryClient(server.url),
    async [Symbol.asyncDispose]() {
      await server.shutdown(2_000);
      await owned?.[Symbol.asyncDispose]();
      await s3?.[Symbol.asyncDispose]();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Registry client

/** A response whose body has been read whole (no open resources left behind). */
export interface Res {
  status: number;
  headers: Headers;
  body: Bytes;
  text: string;
  // deno-lint-ignore no-explicit-any
  json(): any;
}

export async function readResponse(response: Response): Promise<Res> {
  const body = new Uint8Array(await response.arrayBuffer());
  const bodyText = text(body);
  return {
    status: response.status,
    headers: response.headers,
    body,
    text: bodyText,
    json: () => JSON.parse(bodyText),
  };
}

/** The error codes of a registry error body. */
export function errorCodes(res: Res): string[] {
  return res.json().errors.map((e: { code: string }) => e.code);
}

/** Status and the single error code of an error response. */
export function assertError(res: Res, status: number, code: string, message?: string): void {
  const prefix = message ? `${message}: ` : "";
  assertEquals(res.status, status, `${prefix}status (body ${res.text})`);
  if (res.body.length === 0) throw new AssertionError(`${prefix}error response has no body`);
  assertEquals(errorCodes(res), [code], `${prefix}error code`);
  assertMatch(res.headers.get("content-type"), /^application\/json/, `${prefix}content-type`);
}

/** A session's absolute Location with `?digest=` set, its own query (the signed `_state`) kept. */
export function withDigest(location: string, d: string): string {
  const url = new URL(location);
  url.searchParams.set("digest", d);
  return url.toString();
}

export interface RegistryClient {
  url: string;
  /** Any request; `path` is relative to the server or an absolute URL (a Location). */
  request(method: string, path: string, init?: RequestInit): Promise<Res>;
  get(path: string, headers?: HeadersInit): Promise<Res>;
  head(path: string, headers?: HeadersInit): Promise<Res>;
  /** POST ?digest= with the whole body; returns the 201 response. */
  pushBlob(
    name: string,
    data: Uint8Array<ArrayBuffer>,
    algorithm?: "sha256" | "sha512",
  ): Promise<Res>;
  /** POST, PATCHes of `chunkSize` with Content-Range, PUT ?digest=; returns the PUT response. */
  pushBlobChunked(
    name: string,
    data: Uint8Array<ArrayBuffer>,
    chunkSize: number,
    algorithm?: "sha256" | "sha512",
  ): Promise<Res>;
  /** POST a session; returns its absolute Location. */
  startUpload(name: string): Promise<string>;
  pushManifest(
    name: string,
    reference: string,
    body: Uint8Array<ArrayBuffer> | object,
    mediaType?: string,
  ): Promise<Res>;
}

/** `defaults` go on every request (an `Authorization`, say) unless the request sets them. */
export function registryClient(url: string, defaults: HeadersInit = {}): RegistryClient {
  const resolve = (path: string) => new URL(path, url).toString();
  async function request(method: string, path: string, init: RequestInit = {}): Promise<Res> {
    const headers = new Headers(defaults);
    new Headers(init.headers).forEach((value, key) => headers.set(key, value));
    return readResponse(await fetch(resolve(path), { ...init, method, headers }));
  }
  async function startUpload(name: string): Promise<string> {
    const res = await request("POST", `/v2/${name}/blobs/uploads/`);
    assertEquals(res.status, 202, `start upload: ${res.text}`);
    return resolve(res.headers.get("location")!);
  }
  return {
    url,
    request,
    get: (path, headers) => request("GET", path, { headers }),
    head: (path, headers) => request("HEAD", path, { headers }),
    pushBlob(name, data, algorithm = "sha256") {
      const d = digest(data, algorithm);
      return request("POST", `/v2/${name}/blobs/uploads/?digest=${d}`, {
        body: data,
        headers: { "content-type": "application/octet-stream" },
      });
    },
    async pushBlobChunked(name, data, chunkSize, algorithm = "sha256") {
      let location = await startUpload(name);
      for (let start = 0; start < data.length; start += chunkSize) {
        const chunk = data.subarray(start, Math.min(data.length, start + chunkSize));
        const res = await request("PATCH", location, {
          body: chunk,
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${start}-${start + chunk.length - 1}`,
          },
        });
        assertEquals(res.status, 202, `patch ${start}: ${res.text}`);
        location = resolve(res.headers.get("location")!);
      }
      return request("PUT", withDigest(location, digest(data, algorithm)));
    },
    startUpload,
    pushManifest(name, reference, body, mediaType) {
      const data = body instanceof Uint8Array ? body : jsonBytes(body);
      const type = mediaType ??
        (body instanceof Uint8Array ? undefined : (body as { mediaType?: string }).mediaType) ??
        OCI_MANIFEST;
      return request("PUT", `/v2/${name}/manifests/${reference}`, {
        body: data,
        headers: { "content-type": type },
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Manifest builders

/** Media types, the Descriptor type and manifest parsing: the registry's own (src/oci/). */
export * from "../src/oci/manifest.ts";

/** The OCI empty descriptor's content, `{}`. */
export const EMPTY_JSON = bytes("{}");

export const jsonBytes = (value: unknown): Uint8Array<ArrayBuffer> => bytes(JSON.stringify(value));

export function descriptorOf(
  mediaType: string,
  data: Uint8Array,
  extra: Partial<Descriptor> = {},
  algorithm: "sha256" | "sha512" = "sha256",
): Descriptor {
  return { mediaType, digest: digest(data, algorithm), size: data.length, ...extra };
}

export function imageManifest(options: {
  config: Descriptor;
  layers: Descriptor[];
  mediaType?: string;
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}): Record<string, unknown> {
  const { mediaType = OCI_MANIFEST, config, layers, subject, artifactType, annotations } = options;
  return {
    schemaVersion: 2,
    mediaType,
    ...(artifactType ? { artifactType } : {}),
    config,
    layers,
    ...(subject ? { subject } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

export function imageIndex(
  manifests: Descriptor[],
  options: { mediaType?: string; subject?: Descriptor; artifactType?: string } = {},
): Record<string, unknown> {
  const { mediaType = OCI_INDEX, subject, artifactType } = options;
  return {
    schemaVersion: 2,
    mediaType,
    ...(artifactType ? { artifactType } : {}),
    manifests,
    ...(subject ? { subject } : {}),
  };
}

export interface BuiltImage {
  config: Bytes;
  layers: Bytes[];
  manifest: Bytes;
  digest: string;
  descriptor: Descriptor;
}

export interface PushedImage extends BuiltImage {
  name: string;
}

/** An image manifest (OCI, or Docker's when `mediaType` says so) over a config and layers. */
export function buildImage(layers: Bytes[], seed: number, mediaType = OCI_MANIFEST): BuiltImage {
  const docker = mediaType === DOCKER_MANIFEST;
  const config = jsonBytes({ architecture: "amd64", os: "linux", seed });
  const manifest = jsonBytes(imageManifest({
    mediaType,
    config: descriptorOf(docker ? DOCKER_CONFIG : OCI_CONFIG, config),
    layers: layers.map((l) => descriptorOf(docker ? DOCKER_LAYER : OCI_LAYER, l)),
  }));
  return {
    config,
    layers,
    manifest,
    digest: digest(manifest),
    descriptor: descriptorOf(mediaType, manifest),
  };
}

/** Pushes an image's config, layers and manifest (by tag, or by digest when undefined). */
export async function pushBuiltImage(
  client: RegistryClient,
  name: string,
  reference: string | undefined,
  image: BuiltImage,
): Promise<PushedImage> {
  for (const blob of [image.config, ...image.layers]) {
    const res = await client.pushBlob(name, blob);
    assertEquals(res.status, 201, `push blob: ${res.text}`);
  }
  const { mediaType } = image.descriptor;
  const res = await client.pushManifest(name, reference ?? image.digest, image.manifest, mediaType);
  assertEquals(res.status, 201, `push manifest: ${res.text}`);
  return { name, ...image };
}

/** Pushes a config, `layerCount` random layers and a manifest (by tag, or by digest). */
export function pushImage(
  client: RegistryClient,
  name: string,
  reference: string | undefined,
  options: { layerCount?: number; seed?: number; layerSize?: number; mediaType?: string } = {},
): Promise<PushedImage> {
  const { layerCount = 2, seed = 1, layerSize = 1000, mediaType = OCI_MANIFEST } = options;
  const layers = Array.from({ length: layerCount }, (_, i) => randomBytes(layerSize + i, seed + i));
  return pushBuiltImage(client, name, reference, buildImage(layers, seed, mediaType));
}

/** One Deno.test per driver kind, each on a fresh server. */
export function serverTest(
  title: string,
  fn: (server: TestServer) => Promise<void>,
  options: ServerOptions = {},
): void {
  for (const kind of DRIVER_KINDS) {
    Deno.test(`${kind}: ${title}`, async () => {
      await using server = await withServer(kind, options);
      await fn(server);
    });
  }
}

/**
 * Sends a request line verbatim over TCP (fetch would normalise `..` and percent-encodings),
 * and returns the status and body. HTTP/1.1 with `Connection: close`; `host` replaces the Host.
 */
export function rawRequest(
  url: string,
  method: string,
  target: string,
  body = "",
  host?: string,
): Promise<{ status: number; head: string; body: string }> {
  const { hostname, port } = new URL(url);
  return rawExchange(
    url,
    `${method} ${target} HTTP/1.1\r\nHost: ${host ?? `${hostname}:${port}`}\r\n` +
      `Connection: close\r\nContent-Length: ${bytes(body).length}\r\n\r\n${body}`,
  );
}

/**
 * Sends bytes verbatim over TCP (a whole request, head and body, malformed as wished), then
 * half-closes when asked (the client sends no more), and reads until the server closes: the
 * status (NaN when it closed without answering), head and body.
 */
export async function rawExchange(
  url: string,
  request: string,
  options: { halfClose?: boolean } = {},
): Promise<{ status: number; head: string; body: string }> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(bytes(request));
  if (options.halfClose) await conn.closeWrite();
  const response = text(await readAll(conn.readable));
  const split = response.indexOf("\r\n\r\n");
  const head = split < 0 ? response : response.slice(0, split);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  // Chunked bodies: good enough for JSON error bodies, which Deno sends with Content-Length.
  return { status, head, body: split < 0 ? "" : response.slice(split + 4) };
}

/** Every object a driver holds under the registry's roots, with the digest of its bytes. */
export async function snapshot(
  driver: StorageDriver,
  roots = ["blobs", "repositories", "_uploads"],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(prefix: string, depth: number): Promise<void> {
    if (depth > 20) throw new Error(`snapshot too deep at ${prefix}`);
    for (const child of (await driver.list(prefix)).sort()) {
      const key = `${prefix}/${child}`;
      const data = await driver.get(key).catch(() => undefined);
      if (data) out[key] = digest(data);
      else await walk(key, depth + 1);
    }
  }
  for (const root of roots) await walk(root, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// main.ts as a subprocess

export const MAIN_PATH = new URL("../main.ts", import.meta.url).pathname;
/** Passed explicitly: config discovery would otherwise depend on the working directory. */
export const CONFIG_PATH = new URL("../deno.json", import.meta.url).pathname;

/** Runs `main.ts` with these arguments to its exit; stdout and stderr as text. */
export async function runMain(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG_PATH, MAIN_PATH, ...args],
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
    signal: options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined,
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/**
 * Sends a signal unless the child has exited: Deno throws once it has seen the exit, which can
 * happen before the caller's `await child.status` resumes. Says whether the signal went.
 */
export function sendSignal(child: Deno.ChildProcess, signal: Deno.Signal): boolean {
  try {
    child.kill(signal);
    return true;
  } catch (error) {
    if (error instanceof TypeError) return false; // already terminated
    throw error;
  }
}

export interface RegistryProcess extends AsyncDisposable {
  process: Deno.ChildProcess;
  pid: number;
  url: string;
  /** Log lines read from stdout so far (stdout is drained in the background). */
  lines: string[];
  /** Everything it wrote to stderr, once it has exited. */
  stderr: Promise<string>;
  /** Sends a signal and resolves to the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Runs `deno run -A main.ts --host 127.0.0.1 --port 0 …args` and waits for "listening";
 * `wrapper` (e.g. `["prlimit", "--nofile=256:256"]`) runs it, and must exec it (same pid).
 */
export async function spawnRegistry(
  args: string[],
  wrapper: string[] = [],
): Promise<RegistryProcess> {
  const [command, ...wrapperArgs] = [...wrapper, Deno.execPath()];
  const process = new Deno.Command(command, {
    args: [
      ...wrapperArgs,
      "run",
      "-A",
      "--config",
      CONFIG_PATH,
      MAIN_PATH,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const { promise: listening, resolve, reject } = Promise.withResolvers<string>();
  const stderr = new Response(process.stderr).text();
  const drained = (async () => {
    let pending = "";
    for await (const chunk of process.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        if (line.includes('"listening"')) {
          const record = JSON.parse(line);
          resolve(`http://127.0.0.1:${record["server.port"]}`);
        }
      }
    }
    reject(new Error(`registry exited before listening: ${await stderr}`));
  })();
  const timer = setTimeout(() => reject(new Error("registry did not listen within 30 s")), 30_000);
  let url: string;
  try {
    url = await listening;
  } catch (error) {
    sendSignal(process, "SIGKILL");
    await process.status;
    await drained.catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    status ??= (async () => {
      sendSignal(process, signal);
      const result = await process.status;
      await drained.catch(() => {});
      await stderr;
      return result;
    })();
    return status;
  };
  return {
    process,
    pid: process.pid,
    url,
    lines,
    stderr,
    stop,
    [Symbol.asyncDispose]: () => stop().then(() => {}),
  };
}

/** A field (kB) of /proc/<pid>/status, e.g. VmRSS or VmHWM, in bytes. */
export function procStatusBytes(pid: number | "self", field: "VmRSS" | "VmHWM"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kb) * 1024;
}
