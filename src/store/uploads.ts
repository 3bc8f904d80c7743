// Owns blob upload sessions and the commit of verified bytes: start, append, finish, cancel, mount.
// Implements distribution-spec v1.1 end-4a/4b, end-5, end-6, end-11, end-13, end-14 below HTTP.

import { createHasher, digestOfStream, finish } from "../digest.ts";
import { RegistryError } from "../errors.ts";
import { type Digest, isName, parseDigest } from "../grammar.ts";
import { blobPath, uploadDataPath, uploadInfoPath, uploadPath, UPLOADS } from "../storage/paths.ts";
import { blobSize, linkBlob, linkedBlobSize } from "./blobs.ts";
import { digestLock, uploadLock } from "./locks.ts";
import { pin, unpin } from "./pins.ts";
import { isLive, markEnded, type SessionState, signState, verifyState } from "./sessions.ts";
import { orMissing, readJson, type StoreState, writeJson } from "./state.ts";

/** `_uploads/<uuid>/info`, written when a session first stores bytes. */
interface UploadInfo {
  name: string;
  startedAt: string;
}

export interface Session extends SessionState {
  /**
   * The signed `_state` its Location carries while it has stored nothing (src/store/sessions.ts).
   * Once it has, its info on disk vouches for it and its Location is the plain one, so an ended
   * session is unknown everywhere, after restarts and on other instances too.
   */
  state?: string;
}

/** Bytes of one request: a chunk (`Content-Range`) or, without a range, the rest of the blob. */
export interface UploadBody {
  chunks: AsyncIterable<Uint8Array>;
  /** Inclusive byte positions the chunk claims, from `Content-Range`. */
  range?: { start: number; end: number };
  /** The request's Content-Length, when it declared one. */
  length?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A new session: nothing is written until it receives bytes. */
export async function startSession(state: StoreState, name: string): Promise<Session> {
  const key = await state.sessions.key();
  const session = { name, uuid: crypto.randomUUID(), startedAt: Date.now() };
  return { ...session, state: signState(key, session) };
}

/** The session a request names (`_state`: its signed Location); BLOB_UPLOAD_UNKNOWN otherwise. */
export async function findSession(
  state: StoreState,
  name: string,
  uuid: string,
  signed: string | null,
): Promise<Session> {
  if (!UUID.test(uuid)) throw unknownSession(uuid);
  const signedAt = signed === null ? undefined : await verifiedStart(state, name, uuid, signed);
  if (signed !== null && signedAt !== undefined && isLive(state.sessions, uuid, signedAt)) {
    return { name, uuid, startedAt: signedAt, state: signed };
  }
  // A session that has stored bytes (or an ended one, or one older than the TTL): its info
  // on disk decides.
  const info = await readJson<UploadInfo>(state, uploadInfoPath(uuid));
  if (!info || info.name !== name) throw unknownSession(uuid);
  return { name, uuid, startedAt: Date.parse(info.startedAt) || 0 };
}

/** The start time a `_state` vouches for, with the key read again once if it fails. */
async function verifiedStart(state: StoreState, name: string, uuid: string, signed: string) {
  const { sessions } = state;
  const startedAt = verifyState(await sessions.key(), name, uuid, signed);
  if (startedAt !== undefined) return startedAt;
  const reloaded = await sessions.reload();
  return reloaded && verifyState(reloaded, name, uuid, signed);
}

/** Bytes the session holds. */
export async function sessionOffset(state: StoreState, session: Session): Promise<number> {
  return await storedSize(state, session) ?? 0;
}

/** PATCH: appends one chunk (in order) or a streamed rest; resolves to the session's new size. */
export function appendToSession(
  state: StoreState,
  session: Session,
  body: UploadBody,
): Promise<number> {
  return state.withLock(uploadLock(session.uuid), async () => {
    const stored = await storedSize(state, session);
    const current = stored ?? 0;
    if (body.range) checkChunk(body, current);
    const size = await appendBody(state, session, body.chunks, stored);
    delete session.state; // it has stored bytes now
    if (body.range && size !== body.range.end + 1) {
      throw new RegistryError("SIZE_INVALID", "chunk length does not match Content-Range", {
        detail: { expected: body.range.end - body.range.start + 1, received: size - current },
      });
    }
    return size;
  });
}

/** PUT ?digest=: an optional last chunk, then verify and commit the blob. */
export function finishSession(
  state: StoreState,
  session: Session,
  digest: Digest,
  body: UploadBody | undefined,
): Promise<void> {
  const { name, uuid } = session;
  return state.withLock(uploadLock(uuid), async () => {
    const stored = await storedSize(state, session);
    const current = stored ?? 0;
    if (body?.range) checkChunk(body, current);
    if (current === 0 && body) {
      await commitBlob(state, name, digest, body.chunks);
      await dropSession(state, uuid, stored !== undefined);
      return;
    }
    const size = await appendBody(state, session, body?.chunks ?? [], stored);
    await complete(state, name, uuid, digest, size);
  });
}

/** DELETE: ends the session and drops its bytes. */
export function cancelSession(state: StoreState, session: Session): Promise<void> {
  return state.withLock(uploadLock(session.uuid), () => dropSession(state, session.uuid));
}

/**
 * POST ?mount=&from=: links a blob `from` holds (any stored blob when `from` is null, the spec's
 * automatic content discovery). Resolves to whether it was mounted.
 */
export function mountBlob(
  state: StoreState,
  name: string,
  mount: string,
  from: string | null,
): Promise<Digest | undefined> {
  const digest = parseDigest(mount);
  if (!digest || (from !== null && !isName(from))) return Promise.resolve(undefined);
  // Check and link under the digest's lock, so a GC sweep cannot fall in between.
  return state.withLock(digestLock(digest), async () => {
    const known = from === null
      ? await blobSize(state, digest)
      : await linkedBlobSize(state, from, digest);
    if (known === undefined) return undefined;
    await linkBlob(state, name, digest);
    return digest;
  });
}

/**
 * Commits bytes whose digest the caller knows (a layer sent whole, or fetched from elsewhere):
 * they stream straight to the blob's key and appear only if the digest holds, with no session
 * bytes and no copy at commit (on S3 that copy costs about a second per GiB). A blob stored
 * already is only hashed, to be vouched for, and linked: nothing is written.
 */
export function commitBlob(
  state: StoreState,
  name: string,
  digest: Digest,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  return storeBlob(state, name, digest, verified(chunks, digest));
}

/**
 * Writes a blob's bytes to its key and links it, pinned against GC throughout; `body` must throw
 * at its end if the bytes do not match the digest (then nothing appears). A blob stored already
 * is only read through, and linked.
 */
export async function storeBlob(
  state: StoreState,
  name: string,
  digest: Digest,
  body: AsyncIterable<Uint8Array>,
): Promise<void> {
  // Pinned, so a GC sweep leaves the blob (stored or about to be) alone until it is linked.
  let stored = false;
  await pin(state, digest, async () => {
    stored = await blobSize(state, digest) !== undefined;
    return true;
  });
  try {
    if (!stored) {
      await state.cache.write("blob", digest.value, () => state.driver.put(blobPath(digest), body));
    } else for await (const _ of body) { /* hashed only */ }
    await state.withLock(digestLock(digest), () => linkBlob(state, name, digest));
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    throw interrupted(error);
  } finally {
    await unpin(state, [digest]);
  }
}

/**
 * Bytes the session holds (read under its lock), or undefined if a signed one holds none yet.
 * One that holds bytes drops its `_state`: its info vouches for it from now on.
 */
async function storedSize(state: StoreState, session: Session): Promise<number | undefined> {
  const data = await orMissing(state.driver.stat(uploadDataPath(session.uuid)));
  if (!data && session.state === undefined) throw unknownSession(session.uuid);
  if (data) delete session.state;
  return data?.size;
}

/**
 * Appends chunks to an upload holding `stored` bytes (undefined: none yet, and then its info is
 * written first), hashing them on the way; resolves to the upload's new size.
 */
async function appendBody(
  state: StoreState,
  session: Session,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
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
    await writeJson(state, uploadInfoPath(uuid), info, { durable: false });
  }
  let running = state.uploadHashes.get(uuid);
  if (!running || running.offset !== current) {
    // Another process (before a restart) wrote these bytes: the PUT re-reads them instead.
    running = current === 0 ? { hash: createHasher("sha256"), offset: 0 } : undefined;
  }
  async function* hashed(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    for await (const chunk of source) {
      yield chunk;
      // Runs only once the driver has written the chunk.
      running?.hash.update(chunk);
      if (running) running.offset += chunk.length;
    }
  }
  let size: number;
  try {
    size = await state.driver.append(uploadDataPath(uuid), hashed(chunks));
  } catch (error) {
    state.uploadHashes.delete(uuid); // bytes and hash may disagree now: re-read at the end
    if (error instanceof RegistryError) throw error;
    throw interrupted(error);
  }
  if (running && running.offset === size) state.uploadHashes.set(uuid, running);
  else state.uploadHashes.delete(uuid);
  return size;
}

/** Passes chunks through, hashing each; throws DIGEST_INVALID at the end if they disagree. */
async function* verified(source: AsyncIterable<Uint8Array>, digest: Digest) {
  const hash = createHasher(digest.algorithm);
  for await (const chunk of source) {
    yield chunk;
    hash.update(chunk); // after the consumer took the chunk, before the buffer is refilled
  }
  const actual = finish(hash, digest.algorithm);
  if (actual !== digest.value) throw digestMismatch(digest, actual);
}

async function complete(
  state: StoreState,
  name: string,
  uuid: string,
  digest: Digest,
  size: number,
): Promise<void> {
  const data = uploadDataPath(uuid);
  const running = state.uploadHashes.get(uuid);
  state.uploadHashes.delete(uuid);
  const actual = digest.algorithm === "sha256" && running?.offset === size
    ? finish(running.hash, "sha256")
    : await digestOfStream(await state.driver.read(data), digest.algorithm);
  if (actual !== digest.value) {
    await dropSession(state, uuid);
    throw digestMismatch(digest, actual);
  }
  // Bytes and link under the digest's lock (src/maintenance/gc.ts).
  await state.withLock(digestLock(digest), async () => {
    if (await blobSize(state, digest) === undefined) {
      await state.cache.write(
        "blob",
        digest.value,
        () => state.driver.move(data, blobPath(digest)),
        size,
      );
    }
    await linkBlob(state, name, digest);
  });
  await dropSession(state, uuid);
}

/**
 * Ends a session and drops its bytes, if it `stored` any (cancel, failed digest, commit, and
 * upload expiry). Callers hold the session's lock.
 */
export async function dropSession(state: StoreState, uuid: string, stored = true): Promise<void> {
  state.uploadHashes.delete(uuid);
  markEnded(state.sessions, uuid);
  if (!stored) return;
  // The info goes first: a crash between the two deletes leaves bytes no session names (expiry's).
  await state.driver.delete(uploadInfoPath(uuid));
  await state.driver.delete(uploadPath(uuid));
}

/**
 * Deletes upload sessions (and orphaned halves of them) idle for longer than `ttl` ms; each
 * under its own lock, so a PATCH or PUT in progress finishes first (and refreshes the time).
 */
export async function expireSessions(
  state: StoreState,
  ttl: number,
  dryRun = false,
): Promise<{ expired: number; bytes: number }> {
  const { driver } = state;
  const result = { expired: 0, bytes: 0 };
  const now = Date.now();
  for (const uuid of await driver.list(UPLOADS)) {
    const bytes = await state.withLock(uploadLock(uuid), async () => {
      const info = await orMissing(driver.stat(uploadInfoPath(uuid)));
      const data = await orMissing(driver.stat(uploadDataPath(uuid)));
      const times = [info, data].filter((s) => s !== undefined).map((s) => s.modified.getTime());
      if (times.length === 0 || now - Math.max(...times) <= ttl) return undefined;
      if (!dryRun) await dropSession(state, uuid);
      return data?.size ?? 0;
    });
    if (bytes !== undefined) {
      result.expired++;
      result.bytes += bytes;
    }
  }
  return result;
}

/** Chunks must arrive in order: each starts where the upload ends, so a repeat is refused too. */
function checkChunk(body: UploadBody, current: number) {
  const range = body.range!;
  const mismatch = body.length !== undefined && body.length !== range.end - range.start + 1;
  if (range.start !== current || mismatch) {
    throw new RegistryError("RANGE_INVALID", "chunk out of order or mis-sized", {
      status: 416,
      detail: { start: range.start, end: range.end, uploaded: current },
    });
  }
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

export function digestMismatch(digest: Digest, actual: string): RegistryError {
  return new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", {
    detail: { expected: digest.value, actual },
  });
}
