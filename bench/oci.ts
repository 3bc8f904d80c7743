// OCI Distribution operations used by the bench, on top of the raw client,
// plus the test data: one reused pseudo-random pattern buffer and blobs that
// are views of it (distinct blobs = distinct start offsets).

import { createHash } from "node:crypto";
import {
  type HttpConn,
  HttpError,
  locationPath,
  type PatternBody,
  patternSlices,
  type Response,
  withQuery,
} from "./http.ts";

export const MiB = 1 << 20;
export const PATTERN_SIZE = 8 * MiB;
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

/** 8 MiB of deterministic pseudo-random bytes (xorshift32). */
export function makePattern(size = PATTERN_SIZE, seed = 0x9e3779b9): Uint8Array {
  const words = new Uint32Array(size / 4);
  let x = seed >>> 0;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer);
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export interface Blob extends PatternBody {
  digest: string;
}

const digestCache = new Map<string, string>();

export function sha256Body(b: PatternBody): string {
  const key = `${b.offset}:${b.length}`;
  const hit = digestCache.get(key);
  if (hit) return hit;
  const h = createHash("sha256");
  for (const s of patternSlices(b)) h.update(s);
  const d = `sha256:${h.digest("hex")}`;
  digestCache.set(key, d);
  return d;
}

/** The blob named (tag, index): same bytes for every server. */
export function blob(
  pattern: Uint8Array,
  tag: string,
  index: number,
  length: number,
): Blob {
  const offset = fnv1a(`${tag}#${index}`) % pattern.length;
  const b = { pattern, offset, length };
  return { ...b, digest: sha256Body(b) };
}

export function sha256Bytes(b: Uint8Array): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

function expect(r: Response, ok: number[], what: string): void {
  if (!ok.includes(r.status)) {
    const text = new TextDecoder().decode(r.body.subarray(0, 300));
    throw new HttpError(`${what}: HTTP ${r.status} ${text}`);
  }
}

export async function startUpload(c: HttpConn, repo: string): Promise<string> {
  const r = await c.request("POST", `/v2/${repo}/blobs/uploads/`, {
    headers: { "Content-Type": "application/octet-stream" },
  });
  expect(r, [202], "POST upload");
  const loc = r.headers.get("location");
  if (!loc) throw new HttpError("POST upload: no Location");
  return locationPath(loc);
}

/** POST /v2/<repo>/blobs/uploads/ then PUT <location>?digest= with the body. */
export async function pushMonolithic(
  c: HttpConn,
  repo: string,
  b: Blob,
): Promise<void> {
  const loc = await startUpload(c, repo);
  const r = await c.request("PUT", withQuery(loc, "digest", b.digest), {
    headers: { "Content-Type": "application/octet-stream" },
    body: b,
  });
  expect(r, [201], "PUT blob");
}

/** POST, one PATCH streaming the whole blob in chunked frames of `frame` bytes (docker), PUT. */
export async function pushStreamed(
  c: HttpConn,
  repo: string,
  b: Blob,
  frame: number,
): Promise<void> {
  const loc = await startUpload(c, repo);
  const patch = await c.request("PATCH", loc, {
    headers: { "Content-Type": "application/octet-stream" },
    body: b,
    frames: frame,
  });
  expect(patch, [202], "PATCH streamed");
  const next = patch.headers.get("location");
  const r = await c.request("PUT", withQuery(next ? locationPath(next) : loc, "digest", b.digest));
  expect(r, [201], "PUT close upload");
}

/** POST, PATCHes of `chunk` bytes with Content-Range, then PUT ?digest=. */
export async function pushChunked(
  c: HttpConn,
  repo: string,
  b: Blob,
  chunk: number,
): Promise<void> {
  let loc = await startUpload(c, repo);
  for (let start = 0; start < b.length; start += chunk) {
    const n = Math.min(chunk, b.length - start);
    const r = await c.request("PATCH", loc, {
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${start}-${start + n - 1}`,
      },
      body: { pattern: b.pattern, offset: b.offset + start, length: n },
    });
    expect(r, [202], "PATCH chunk");
    const next = r.headers.get("location");
    if (next) loc = locationPath(next);
  }
  const r = await c.request("PUT", withQuery(loc, "digest", b.digest));
  expect(r, [201], "PUT close upload");
}

/** GET a blob into the reused sink buffer; returns bytes received. */
export async function pullBlob(
  c: HttpConn,
  repo: string,
  digest: string,
  sink: Uint8Array,
  verify = false,
): Promise<number> {
  const h = verify ? createHash("sha256") : null;
  const r = await c.request("GET", `/v2/${repo}/blobs/${digest}`, {
    sink,
    onData: h ? (d) => h.update(d) : undefined,
  });
  expect(r, [200], "GET blob");
  if (h && `sha256:${h.digest("hex")}` !== digest) {
    throw new HttpError(`GET blob: digest mismatch for ${digest}`);
  }
  return r.bodyBytes;
}

export async function deleteBlob(
  c: HttpConn,
  repo: string,
  digest: string,
): Promise<number> {
  const r = await c.request("DELETE", `/v2/${repo}/blobs/${digest}`);
  return r.status;
}

/** Pushes small in-memory bytes as a blob (config, tiny layers). */
export async function pushBytes(
  c: HttpConn,
  repo: string,
  bytes: Uint8Array,
): Promise<string> {
  const digest = sha256Bytes(bytes);
  const loc = await startUpload(c, repo);
  const r = await c.request("PUT", withQuery(loc, "digest", digest), {
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  expect(r, [201], "PUT small blob");
  return digest;
}

export function manifestFor(
  config: { digest: string; size: number },
  layers: { digest: string; size: number }[],
): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, ...config },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, ...l })),
  }));
}

export async function putManifest(
  c: HttpConn,
  repo: string,
  ref: string,
  manifest: Uint8Array,
): Promise<void> {
  const r = await c.request("PUT", `/v2/${repo}/manifests/${ref}`, {
    headers: { "Content-Type": OCI_MANIFEST },
    body: manifest,
  });
  expect(r, [201], "PUT manifest");
}

export const CONFIG_JSON = new TextEncoder().encode(JSON.stringify({
  architecture: "amd64",
  os: "linux",
  rootfs: { type: "layers", diff_ids: [] },
  config: {},
}));

/** One small image tagged `tag` in `repo`: the config, a 4 KiB layer and the manifest. */
export async function pushSmallImage(
  c: HttpConn,
  repo: string,
  tag: string,
  pattern: Uint8Array,
): Promise<void> {
  const config = await pushBytes(c, repo, CONFIG_JSON);
  const layer = blob(pattern, "manifest-layer", 0, 4096);
  await pushMonolithic(c, repo, layer);
  const manifest = manifestFor({ digest: config, size: CONFIG_JSON.length }, [
    { digest: layer.digest, size: layer.length },
  ]);
  await putManifest(c, repo, tag, manifest);
}
