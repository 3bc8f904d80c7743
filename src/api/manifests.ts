// Owns manifests over HTTP: PUT of exact bytes, GET/HEAD by tag or digest (ETag), DELETE.
// Implements distribution-spec v1.1 end-3, end-7, end-9 and the OCI-Subject header.

import { RegistryError } from "../errors.ts";
import { parseReference } from "../grammar.ts";
import { type Context, externalUrl, readLimited, repositoryName } from "../http.ts";
import { MAX_MANIFEST_BYTES } from "../oci/manifest.ts";
import type { Reference } from "../store/store.ts";

export async function putManifest(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const reference = parseReference(ctx.params.reference ?? "");
  const body = await readLimited(ctx, MAX_MANIFEST_BYTES);
  const contentType = ctx.request.headers.get("content-type");
  const { digest, subject } = await ctx.store.manifests.put(name, reference, body, contentType);
  const headers = new Headers({
    "location": externalUrl(ctx, `/v2/${name}/manifests/${digest.value}`),
    "docker-content-digest": digest.value,
    "content-length": "0",
  });
  if (subject) headers.set("oci-subject", subject.value);
  return new Response(null, { status: 201, headers });
}

export async function getManifest(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const reference = readableReference(ctx);
  const manifest = await ctx.store.manifests.get(name, reference);
  if (!manifest) throw manifestUnknown(ctx.params.reference);
  const { digest } = manifest;
  const headers = new Headers({
    "content-type": manifest.mediaType,
    "content-length": String(manifest.bytes.length),
    "docker-content-digest": digest.value,
    "etag": `"${digest.value}"`,
  });
  if (matchesEtag(ctx.request.headers.get("if-none-match"), digest.value)) {
    headers.delete("content-length");
    return new Response(null, { status: 304, headers });
  }
  if (ctx.head) return new Response(null, { status: 200, headers });
  return new Response(manifest.bytes, { status: 200, headers });
}

export async function deleteManifest(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const reference = parseReference(ctx.params.reference ?? "");
  await ctx.store.manifests.delete(name, reference);
  return new Response(null, { status: 202 });
}

/**
 * The reference of a GET or HEAD: one that is not a valid tag names nothing stored, so it is
 * "not found" (as distribution answers), where a PUT of it is TAG_INVALID.
 */
function readableReference(ctx: Context): Reference {
  try {
    return parseReference(ctx.params.reference ?? "");
  } catch (error) {
    if (error instanceof RegistryError && error.code === "TAG_INVALID") {
      throw manifestUnknown(ctx.params.reference);
    }
    throw error;
  }
}

function manifestUnknown(reference: string | undefined): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", undefined, { detail: { reference } });
}

function matchesEtag(header: string | null, digest: string): boolean {
  if (!header) return false;
  return header.split(",").some((tag) => {
    const value = tag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
    return value === digest || value === "*";
  });
}
