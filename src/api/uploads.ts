// Owns blob uploads over HTTP: start (session, monolithic, mount), PATCH, status, PUT, cancel.
// Implements distribution-spec v1.1 end-4a/4b, end-5, end-6, end-11, end-13 and DELETE of a session.

import { RegistryError } from "../errors.ts";
import { type Digest, isName, requireDigest } from "../grammar.ts";
import { bodyChunks, bodyOf, type Context, externalUrl, repositoryName } from "../http.ts";
import type { Session, UploadBody } from "../store/store.ts";

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
    const mounted = await ctx.store.uploads.mount(name, mount, from);
    if (mounted) return blobCreated(ctx, name, mounted);
  }
  const digestParam = params.get("digest");
  const digest = digestParam === null ? undefined : requireDigest(digestParam);
  const body = bodyOf(ctx.request);
  if (digest && body) {
    await ctx.store.uploads.commit(name, digest, body);
    return blobCreated(ctx, name, digest);
  }
  const session = await ctx.store.uploads.start(name);
  if (digest) {
    await ctx.store.uploads.finish(session, digest);
    return blobCreated(ctx, name, digest);
  }
  return uploadAccepted(ctx, session, 0);
}

/** PATCH — one chunk (`Content-Range: a-b`) or, without the header, a streamed whole. */
export async function patchUpload(ctx: Context): Promise<Response> {
  const session = await requireSession(ctx);
  const body = uploadBody(ctx.request);
  const offset = await withSessionHeaders(
    ctx,
    session,
    () => ctx.store.uploads.append(session, body),
  );
  return uploadAccepted(ctx, session, offset);
}

/** GET — where the session stands. */
export async function getUploadStatus(ctx: Context): Promise<Response> {
  const session = await requireSession(ctx);
  return uploadAccepted(ctx, session, await ctx.store.uploads.offset(session), 204);
}

/** PUT ?digest= — an optional last chunk, then verify and commit the blob. */
export async function finishUpload(ctx: Context): Promise<Response> {
  const session = await requireSession(ctx);
  const digest = requireDigest(ctx.url.searchParams.get("digest"));
  const body = ctx.request.body ? uploadBody(ctx.request) : undefined;
  await withSessionHeaders(ctx, session, () => ctx.store.uploads.finish(session, digest, body));
  return blobCreated(ctx, session.name, digest);
}

/** DELETE — cancel the session and drop its bytes. */
export async function cancelUpload(ctx: Context): Promise<Response> {
  await ctx.store.uploads.cancel(await requireSession(ctx));
  return new Response(null, { status: 204 });
}

function requireSession(ctx: Context): Promise<Session> {
  const name = repositoryName(ctx);
  return ctx.store.uploads.find(name, ctx.params.uuid ?? "", ctx.url.searchParams.get("_state"));
}

/** The request's bytes with the chunk they claim to be (`Content-Range`, `Content-Length`). */
function uploadBody(request: Request): UploadBody {
  const length = request.headers.get("content-length");
  return {
    chunks: bodyChunks(request),
    range: parseContentRange(request.headers.get("content-range")),
    length: length === null ? undefined : Number(length),
  };
}

function parseContentRange(header: string | null): UploadBody["range"] {
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

/** A chunk refused as out of order tells the client where the session stands (its headers). */
async function withSessionHeaders<T>(ctx: Context, session: Session, work: () => Promise<T>) {
  try {
    return await work();
  } catch (error) {
    const uploaded = (error as RegistryError).detail as { uploaded?: number } | undefined;
    if (error instanceof RegistryError && typeof uploaded?.uploaded === "number") {
      Object.assign(error.headers, sessionHeaders(ctx, session, uploaded.uploaded));
    }
    throw error;
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
