// Owns blob upload sessions: start, monolithic and chunked PATCH, status, finish, cancel, mount.
// Implements distribution-spec v1.1 end-4a/4b, end-5, end-6, end-11, end-13 and DELETE of a session.

import { RegistryError } from "../errors.ts";
import { type Digest, isName, parseDigest, requireDigest } from "../grammar.ts";
import { createHasher, digestOfStream, finish } from "../digest.ts";
import { bodyChunks, type Context, externalUrl, repositoryName } from "../http.ts";
import {
  blobSize,
  linkBlob,
  linkedBlobSize,
  orMissing,
  readJson,
  type Registry,
  writeJson,
} from "../registry.ts";
import { blobPath, uploadDataPath, uploadInfoPath, uploadPath } from "../storage/paths.ts";
import { digestLock, pin, unpin } from "../pins.ts";

interface UploadInfo {
  name: string;
  startedAt: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** POST /v2/<name>/blobs/uploads/ — a session, a monolithic push (?digest=) or a mount. */
export async function startUpload(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const params = ctx.url.searchParams;
  const mount = params.get("mount");
  const from = params.get("from");
  // With auth on, a mount needs `pull` on `from` (else: a normal upload); a blob of unknown origin
  // (no `from`) cannot be vouched for, so automatic mounting is off then.
  const mayMount = !ctx.access || (from !== null && isName(from) && ctx.access.canPull(from));
  if (mount !== null && mayMount) {
    const mounted = await tryMount(ctx.registry, name, mount, from);
    if (mounted) return blobCreated(ctx, name, mounted);
  }
  const digestParam = params.get("digest");
  const digest = digestParam === null ? undefined : requireDigest(digestParam);
  if (digest && await storeWhole(ctx.registry, name, digest, ctx.request)) {
    return blobCreated(ctx, name, digest);
  }
  const uuid = crypto.randomUUID();
  // Not flushed to disk: after a machine crash an unfinished session may be unknown (404), and
  // the client starts again; that saves two disk flushes on every push.
  await writeJson(ctx.registry, uploadInfoPath(uuid), {
    name,
    startedAt: new Date().toISOString(),
  }, { durable: false });
  await ctx.registry.driver.append(uploadDataPath(uuid), []);
  if (digest) {
    await ctx.registry.withLock(uuid, async () => {
      const size = await appendBody(ctx.registry, uuid, ctx.request, 0);
      await complete(ctx.registry, name, uuid, digest, size);
    });
    return blobCreated(ctx, name, digest);
  }
  return uploadAccepted(ctx, name, uuid, 0);
}

/** PATCH — one chunk (`Content-Range: a-b`) or, without the header, a streamed whole. */
export async function patchUpload(ctx: Context): Promise<Response> {
  const { name, uuid } = await requireSession(ctx);
  const range = parseContentRange(ctx.request.headers.get("content-range"));
  const offset = await ctx.registry.withLock(uuid, async () => {
    const current = await uploadSize(ctx.registry, uuid);
    if (range) checkChunk(ctx, name, uuid, range, current);
    const size = await appendBody(ctx.registry, uuid, ctx.request, current);
    if (range && size !== range.end + 1) {
      throw new RegistryError("SIZE_INVALID", "chunk length does not match Content-Range", {
        detail: { expected: range.end - range.start + 1, received: size - current },
      });
    }
    return size;
  });
  return uploadAccepted(ctx, name, uuid, offset);
}

/** GET — where the session stands. */
export async function getUploadStatus(ctx: Context): Promise<Response> {
  const { name, uuid } = await requireSession(ctx);
  const offset = await uploadSize(ctx.registry, uuid);
  return uploadAccepted(ctx, name, uuid, offset, 204);
}

/** PUT ?digest= — an optional last chunk, then verify and commit the blob. */
export async function finishUpload(ctx: Context): Promise<Response> {
  const { name, uuid } = await requireSession(ctx);
  const digest = requireDigest(ctx.url.searchParams.get("digest"));
  const range = parseContentRange(ctx.request.headers.get("content-range"));
  await ctx.registry.withLock(uuid, async () => {
    const current = await uploadSize(ctx.registry, uuid);
    if (range) checkChunk(ctx, name, uuid, range, current);
    if (current === 0 && await storeWhole(ctx.registry, name, digest, ctx.request)) {
      await dropSession(ctx.registry, uuid);
      return;
    }
    const size = await appendBody(ctx.registry, uuid, ctx.request, current);
    await complete(ctx.registry, name, uuid, digest, size);
  });
  return blobCreated(ctx, name, digest);
}

/** DELETE — cancel the session and drop its bytes. */
export async function cancelUpload(ctx: Context): Promise<Response> {
  const { uuid } = await requireSession(ctx);
  await ctx.registry.withLock(uuid, () => dropSession(ctx.registry, uuid));
  return new Response(null, { status: 204 });
}

async function tryMount(
  registry: Registry,
  name: string,
  mount: string,
  from: string | null,
): Promise<Digest | undefined> {
  const digest = parseDigest(mount);
  if (!digest) return undefined;
  if (from !== null && !isName(from)) return undefined;
  // Without `from`, any known blob may be mounted ("automatic content discovery").
  // Check and link under the digest's lock, so a GC sweep cannot fall in between (src/gc.ts).
  const mounted = await registry.withLock(digestLock(digest), async () => {
    const known = from === null
      ? await blobSize(registry, digest)
      : await linkedBlobSize(registry, from, digest);
    if (known === undefined) return false;
    await linkBlob(registry, name, digest);
    return true;
  });
  return mounted ? digest : undefined;
}

async function requireSession(ctx: Context): Promise<{ name: string; uuid: string }> {
  const name = repositoryName(ctx);
  const uuid = ctx.params.uuid ?? "";
  const info = UUID.test(uuid)
    ? await readJson<UploadInfo>(ctx.registry, uploadInfoPath(uuid))
    : undefined;
  if (!info || info.name !== name) {
    throw new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { detail: { uuid } });
  }
  return { name, uuid };
}

async function uploadSize(registry: Registry, uuid: string): Promise<number> {
  const info = await orMissing(registry.driver.stat(uploadDataPath(uuid)));
  if (!info) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { detail: { uuid } });
  return info.size;
}

/**
 * Appends the request body to an upload now `current` bytes long (read under the upload's lock),
 * hashing it on the way; resolves to the upload's new size.
 */
async function appendBody(
  registry: Registry,
  uuid: string,
  request: Request,
  current: number,
): Promise<number> {
  let state = registry.uploadHashes.get(uuid);
  if (!state || state.offset !== current) {
    // Another process (before a restart) wrote these bytes: the PUT re-reads them instead.
    state = current === 0 ? { hash: createHasher("sha256"), offset: 0 } : undefined;
  }
  async function* hashed(source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      yield chunk;
      // Runs only once the driver has written the chunk.
      state?.hash.update(chunk);
      if (state) state.offset += chunk.length;
    }
  }
  let size: number;
  try {
    size = await registry.driver.append(uploadDataPath(uuid), hashed(bodyChunks(request)));
  } catch (error) {
    registry.uploadHashes.delete(uuid); // bytes and hash may disagree now: re-read at the end
    throw interrupted(error);
  }
  if (state && state.offset === size) registry.uploadHashes.set(uuid, state);
  else registry.uploadHashes.delete(uuid);
  return size;
}

/**
 * A whole blob in one body, its digest known up front, streams straight to its final key and
 * appears only if the digest holds: no session bytes and no copy at commit (on S3 that copy
 * costs about a second per GiB). Resolves false, reading nothing, when the blob is stored
 * already or the body is absent; the caller then takes the session path.
 */
async function storeWhole(
  registry: Registry,
  name: string,
  digest: Digest,
  request: Request,
): Promise<boolean> {
  if (request.body === null) return false;
  // Pinned while absent, so a GC sweep leaves the new blob alone until it is linked.
  const absent = async () => await blobSize(registry, digest) === undefined;
  if (!await pin(registry, digest, absent)) return false;
  try {
    await registry.driver.put(blobPath(digest), verified(bodyChunks(request), digest));
    await registry.withLock(digestLock(digest), () => linkBlob(registry, name, digest));
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    throw interrupted(error);
  } finally {
    unpin(registry.pins, [digest]);
  }
  return true;
}

/** Passes chunks through, hashing each; throws DIGEST_INVALID at the end if they disagree. */
async function* verified(source: AsyncIterable<Uint8Array>, digest: Digest) {
  const hash = createHasher(digest.algorithm);
  for await (const chunk of source) {
    yield chunk;
    hash.update(chunk); // after the consumer took the chunk, before the buffer is refilled
  }
  const actual = finish(hash, digest.algorithm);
  if (actual !== digest.value) {
    throw digestMismatch(digest, actual);
  }
}

async function complete(
  registry: Registry,
  name: string,
  uuid: string,
  digest: Digest,
  size: number,
): Promise<void> {
  const data = uploadDataPath(uuid);
  const state = registry.uploadHashes.get(uuid);
  registry.uploadHashes.delete(uuid);
  const actual = digest.algorithm === "sha256" && state?.offset === size
    ? finish(state.hash, "sha256")
    : await digestOfStream(await registry.driver.read(data), digest.algorithm);
  if (actual !== digest.value) {
    await dropSession(registry, uuid);
    throw digestMismatch(digest, actual);
  }
  // Bytes and link under the digest's lock (src/gc.ts).
  await registry.withLock(digestLock(digest), async () => {
    if (await blobSize(registry, digest) === undefined) {
      await registry.driver.move(data, blobPath(digest));
    }
    await linkBlob(registry, name, digest);
  });
  await dropSession(registry, uuid);
}

/** Ends a session and drops its bytes (cancel, failed digest, commit, and GC's upload expiry). */
export async function dropSession(registry: Registry, uuid: string): Promise<void> {
  registry.uploadHashes.delete(uuid);
  // The info goes first: a crash between the two deletes leaves bytes no session names (GC's).
  await registry.driver.delete(uploadInfoPath(uuid));
  await registry.driver.delete(uploadPath(uuid));
}

interface ChunkRange {
  start: number;
  end: number;
}

function parseContentRange(header: string | null): ChunkRange | undefined {
  if (header === null) return undefined;
  const match = /^(?:bytes[= ])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match || Number(match[2]) < Number(match[1])) {
    throw new RegistryError("RANGE_INVALID", "malformed Content-Range", {
      status: 416,
      detail: { "content-range": header },
    });
  }
  return { start: Number(match[1]), end: Number(match[2]) };
}

/** Chunks must arrive in order: each starts where the upload ends, so a repeat is refused too. */
function checkChunk(ctx: Context, name: string, uuid: string, range: ChunkRange, current: number) {
  const declared = ctx.request.headers.get("content-length");
  const lengthMismatch = declared !== null && Number(declared) !== range.end - range.start + 1;
  if (range.start !== current || lengthMismatch) {
    throw new RegistryError("RANGE_INVALID", "chunk out of order or mis-sized", {
      status: 416,
      detail: { start: range.start, end: range.end, uploaded: current },
      headers: sessionHeaders(ctx, name, uuid, current),
    });
  }
}

function sessionHeaders(ctx: Context, name: string, uuid: string, offset: number) {
  return {
    "location": externalUrl(ctx, `/v2/${name}/blobs/uploads/${uuid}`),
    "range": `0-${Math.max(0, offset - 1)}`,
    "docker-upload-uuid": uuid,
  };
}

function uploadAccepted(ctx: Context, name: string, uuid: string, offset: number, status = 202) {
  return new Response(null, {
    status,
    headers: { ...sessionHeaders(ctx, name, uuid, offset), "content-length": "0" },
  });
}

function blobCreated(ctx: Context, name: string, digest: Digest): Response {
  return new Response(null, {
    status: 201,
    headers: {
      "location": externalUrl(ctx, `/v2/${name}/blobs/${digest.value}`),
      "docker-content-digest": digest.value,
      "content-length": "0",
    },
  });
}

/** The request body broke off (or storage failed) midway. */
function interrupted(error: unknown): RegistryError {
  return new RegistryError("BLOB_UPLOAD_INVALID", "upload interrupted", {
    detail: { reason: String(error) },
  });
}

function digestMismatch(digest: Digest, actual: string): RegistryError {
  return new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", {
    detail: { expected: digest.value, actual },
  });
}
