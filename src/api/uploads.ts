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
import { isLive, markEnded, type SessionState, signState, verifyState } from "../sessions.ts";

/** `_uploads/<uuid>/info`, written when a session first stores bytes. */
interface UploadInfo {
  name: string;
  startedAt: string;
}

interface Session extends SessionState {
  /**
   * The signed `_state` its Location carries while it has stored nothing (src/sessions.ts).
   * Once it has, its info on disk vouches for it and its Location is the plain one, so an ended
   * session is unknown everywhere, after restarts and on other instances too.
   */
  state?: string;
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
  const session = await newSession(ctx.registry, name);
  if (digest) {
    await ctx.registry.withLock(session.uuid, async () => {
      const size = await appendBody(ctx.registry, session, ctx.request, undefined);
      await complete(ctx.registry, name, session.uuid, digest, size);
    });
    return blobCreated(ctx, name, digest);
  }
  return uploadAccepted(ctx, session, 0);
}

/** PATCH — one chunk (`Content-Range: a-b`) or, without the header, a streamed whole. */
export async function patchUpload(ctx: Context): Promise<Response> {
  const session = await requireSession(ctx);
  const range = parseContentRange(ctx.request.headers.get("content-range"));
  const offset = await ctx.registry.withLock(session.uuid, async () => {
    const stored = await storedSize(ctx.registry, session);
    const current = stored ?? 0;
    if (range) checkChunk(ctx, session, range, current);
    const size = await appendBody(ctx.registry, session, ctx.request, stored);
    delete session.state; // it has stored bytes now
    if (range && size !== range.end + 1) {
      throw new RegistryError("SIZE_INVALID", "chunk length does not match Content-Range", {
        detail: { expected: range.end - range.start + 1, received: size - current },
      });
    }
    return size;
  });
  return uploadAccepted(ctx, session, offset);
}

/** GET — where the session stands. */
export async function getUploadStatus(ctx: Context): Promise<Response> {
  const session = await requireSession(ctx);
  const offset = await storedSize(ctx.registry, session) ?? 0;
  return uploadAccepted(ctx, session, offset, 204);
}

/** PUT ?digest= — an optional last chunk, then verify and commit the blob. */
export async function finishUpload(ctx: Context): Promise<Response> {
  const session = await requireSession(ctx);
  const { name, uuid } = session;
  const digest = requireDigest(ctx.url.searchParams.get("digest"));
  const range = parseContentRange(ctx.request.headers.get("content-range"));
  await ctx.registry.withLock(uuid, async () => {
    const stored = await storedSize(ctx.registry, session);
    const current = stored ?? 0;
    if (range) checkChunk(ctx, session, range, current);
    if (current === 0 && await storeWhole(ctx.registry, name, digest, ctx.request)) {
      await dropSession(ctx.registry, uuid, stored !== undefined);
      return;
    }
    const size = await appendBody(ctx.registry, session, ctx.request, stored);
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

/** A new session: nothing is written until it receives bytes. */
async function newSession(registry: Registry, name: string): Promise<Session> {
  const key = await registry.sessions.key();
  const session = { name, uuid: crypto.randomUUID(), startedAt: Date.now() };
  return { ...session, state: signState(key, session) };
}

async function requireSession(ctx: Context): Promise<Session> {
  const name = repositoryName(ctx);
  const uuid = ctx.params.uuid ?? "";
  if (!UUID.test(uuid)) throw unknownSession(uuid);
  const state = ctx.url.searchParams.get("_state");
  const signedAt = state === null
    ? undefined
    : await verifiedStart(ctx.registry, name, uuid, state);
  if (state !== null && signedAt !== undefined && isLive(ctx.registry.sessions, uuid, signedAt)) {
    return { name, uuid, startedAt: signedAt, state };
  }
  // A session that has stored bytes (or an ended one, or one older than the TTL): its info
  // on disk decides.
  const info = await readJson<UploadInfo>(ctx.registry, uploadInfoPath(uuid));
  if (!info || info.name !== name) throw unknownSession(uuid);
  return { name, uuid, startedAt: Date.parse(info.startedAt) || 0 };
}

/** The start time a `_state` vouches for, with the key read again once if it fails. */
async function verifiedStart(registry: Registry, name: string, uuid: string, state: string) {
  const { sessions } = registry;
  const startedAt = verifyState(await sessions.key(), name, uuid, state);
  if (startedAt !== undefined) return startedAt;
  const reloaded = await sessions.reload();
  return reloaded && verifyState(reloaded, name, uuid, state);
}

/**
 * Bytes the session holds (read under its lock), or undefined if a signed one holds none yet.
 * One that holds bytes drops its `_state`: its info vouches for it from now on.
 */
async function storedSize(registry: Registry, session: Session): Promise<number | undefined> {
  const data = await orMissing(registry.driver.stat(uploadDataPath(session.uuid)));
  if (!data && session.state === undefined) throw unknownSession(session.uuid);
  if (data) delete session.state;
  return data?.size;
}

/**
 * Appends the request body to an upload holding `stored` bytes (undefined: none yet, and then
 * its info is written first), hashing it on the way; resolves to the upload's new size.
 */
async function appendBody(
  registry: Registry,
  session: Session,
  request: Request,
  stored: number | undefined,
): Promise<number> {
  const { uuid } = session;
  const current = stored ?? 0;
  if (stored === undefined) {
    // Not flushed: after a machine crash an unfinished session may be unknown (404), and the
    // client starts again; that saves a flush on every chunked push.
    const info: UploadInfo = {
      name: session.name,
      startedAt: new Date(session.startedAt).toISOString(),
    };
    await writeJson(registry, uploadInfoPath(uuid), info, { durable: false });
  }
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
 * costs about a second per GiB). A blob stored already is only hashed, to be vouched for, and
 * linked: nothing is written. Resolves false, reading nothing, when the body is absent; the
 * caller then takes the session path.
 */
async function storeWhole(
  registry: Registry,
  name: string,
  digest: Digest,
  request: Request,
): Promise<boolean> {
  if (request.body === null) return false;
  // Pinned, so a GC sweep leaves the blob (stored or about to be) alone until it is linked.
  let stored = false;
  await pin(registry, digest, async () => {
    stored = await blobSize(registry, digest) !== undefined;
    return true;
  });
  try {
    const body = verified(bodyChunks(request), digest);
    if (!stored) await registry.driver.put(blobPath(digest), body);
    else for await (const _ of body) { /* hashed only */ }
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

/**
 * Ends a session and drops its bytes, if it `stored` any (cancel, failed digest, commit, and GC's
 * upload expiry).
 */
export async function dropSession(registry: Registry, uuid: string, stored = true): Promise<void> {
  registry.uploadHashes.delete(uuid);
  markEnded(registry.sessions, uuid);
  if (!stored) return;
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
function checkChunk(ctx: Context, session: Session, range: ChunkRange, current: number) {
  const declared = ctx.request.headers.get("content-length");
  const lengthMismatch = declared !== null && Number(declared) !== range.end - range.start + 1;
  if (range.start !== current || lengthMismatch) {
    throw new RegistryError("RANGE_INVALID", "chunk out of order or mis-sized", {
      status: 416,
      detail: { start: range.start, end: range.end, uploaded: current },
      headers: sessionHeaders(ctx, session, current),
    });
  }
}

function sessionHeaders(ctx: Context, { name, uuid, state }: Session, offset: number) {
  const query = state === undefined ? "" : `?_state=${state}`;
  return {
    "location": externalUrl(ctx, `/v2/${name}/blobs/uploads/${uuid}${query}`),
    "range": `0-${Math.max(0, offset - 1)}`,
    "docker-upload-uuid": uuid,
  };
}

function uploadAccepted(ctx: Context, session: Session, offset: number, status = 202) {
  return new Response(null, {
    status,
    headers: { ...sessionHeaders(ctx, session, offset), "content-length": "0" },
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

function unknownSession(uuid: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { detail: { uuid } });
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
