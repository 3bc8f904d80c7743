// Owns manifests: validated PUT of exact bytes, GET/HEAD by tag or digest, DELETE of tag or digest.
// Implements distribution-spec v1.1 end-3, end-7, end-9 and the subject/OCI-Subject rules.

import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest, parseReference } from "../grammar.ts";
import { digestOf } from "../digest.ts";
import {
  type Context,
  externalUrl,
  readLimited,
  repositoryName,
  requireDeleteEnabled,
} from "../http.ts";
import {
  blobSize,
  type CachedManifest,
  linkedBlobSize,
  orMissing,
  readJson,
  type Registry,
  writeJson,
} from "../registry.ts";
import { pin, unpin } from "../pins.ts";
import { addToCatalog } from "./catalog.ts";
import { quarantineBlob } from "../fsck.ts";
import { log } from "../log.ts";
import { blobPath, referrerPath, revisionLinkPath, tagPath, tagsPath } from "../storage/paths.ts";

/** What the spec and distribution accept (4 MiB); containerd refuses larger anyway. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPES: Record<string, "image" | "index"> = {
  [OCI_MANIFEST]: "image",
  [OCI_INDEX]: "index",
  "application/vnd.docker.distribution.manifest.v2+json": "image",
  "application/vnd.docker.distribution.manifest.list.v2+json": "index",
};

/** What a repository records of each manifest revision. */
export interface Revision {
  mediaType: string;
  size: number;
  subject?: string;
}

/** An OCI descriptor, as referrers lists return it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export async function putManifest(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const reference = parseReference(ctx.params.reference ?? "");
  const body = await readLimited(ctx.request, MAX_MANIFEST_BYTES);
  const algorithm = "digest" in reference ? reference.digest.algorithm : "sha256";
  const digest = parseDigest(digestOf(body, algorithm))!;
  if ("digest" in reference && reference.digest.value !== digest.value) {
    throw new RegistryError("DIGEST_INVALID", "manifest digest does not match the reference", {
      detail: { reference: reference.digest.value, actual: digest.value },
    });
  }
  const manifest = parseManifest(body, ctx.request.headers.get("content-type"));
  const registry = ctx.registry;
  // Everything checked stays pinned against GC until the revision and tag are written.
  const pinned = await requireReferencesExist(registry, name, manifest);
  try {
    await storeManifest(ctx, name, reference, digest, manifest, body, pinned);
  } finally {
    unpin(registry.pins, pinned);
  }

  const headers = new Headers({
    "location": externalUrl(ctx, `/v2/${name}/manifests/${digest.value}`),
    "docker-content-digest": digest.value,
    "content-length": "0",
  });
  if (manifest.subject) headers.set("oci-subject", manifest.subject.value);
  return new Response(null, { status: 201, headers });
}

async function storeManifest(
  ctx: Context,
  name: string,
  reference: { tag: string } | { digest: Digest },
  digest: Digest,
  manifest: ParsedManifest,
  body: Uint8Array<ArrayBuffer>,
  pinned: Digest[],
): Promise<void> {
  const registry = ctx.registry;
  const revision: Revision = { mediaType: manifest.mediaType, size: body.length };
  if (manifest.subject) revision.subject = manifest.subject.value;
  // Bytes before the links that name them: a crash in between leaves only unreferenced bytes.
  await pin(registry, digest, async () => {
    if (await blobSize(registry, digest) === undefined) {
      await registry.driver.put(blobPath(digest), body);
    }
    return true;
  });
  pinned.push(digest);
  await registry.withLock(manifestLock(name, digest), async () => {
    await writeJson(registry, revisionLinkPath(name, digest), revision);
    if (manifest.subject) {
      await writeJson(
        registry,
        referrerPath(name, manifest.subject, digest),
        {
          mediaType: manifest.mediaType,
          digest: digest.value,
          size: body.length,
          artifactType: manifest.artifactType,
          annotations: manifest.annotations,
        } satisfies Descriptor,
      );
    }
    const cached = { mediaType: manifest.mediaType, bytes: body };
    registry.cache?.manifests.set(`${name}@${digest.value}`, cached, body.length);
  });
  await addToCatalog(registry, name);
  if ("tag" in reference) {
    const tag = reference.tag;
    await registry.withLock(tagsLock(name), () => writeTag(registry, name, tag, digest));
  }
}

export async function getManifest(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const reference = parseReference(ctx.params.reference ?? "");
  const digest = "digest" in reference
    ? reference.digest
    : await resolveTag(ctx.registry, name, reference.tag);
  const manifest = digest && await loadManifest(ctx.registry, name, digest);
  if (!digest || !manifest) throw manifestUnknown(ctx.params.reference);

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

/** A repository's manifest with its media type, from the cache or from storage (then cached). */
async function loadManifest(
  registry: Registry,
  name: string,
  digest: Digest,
): Promise<CachedManifest | undefined> {
  const key = `${name}@${digest.value}`;
  const cached = registry.cache?.manifests.get(key);
  if (cached) return cached;
  const revision = await readJson<Revision>(registry, revisionLinkPath(name, digest));
  const bytes = revision && await orMissing(registry.driver.get(blobPath(digest)));
  if (!revision || !bytes) return undefined;
  // Stored manifests are small: each read from storage is checked (microseconds), on S3 too.
  const actual = digestOf(bytes, digest.algorithm);
  if (actual !== digest.value) {
    log.error("manifest corrupt on read", { "blob.digest": digest.value, "blob.actual": actual });
    log.error("blob quarantined", {
      "blob.digest": digest.value,
      "storage.key": await quarantineBlob(registry, digest),
    });
    return undefined;
  }
  const manifest = { mediaType: revision.mediaType, bytes };
  registry.cache?.manifests.set(key, manifest, bytes.length);
  return manifest;
}

export async function deleteManifest(ctx: Context): Promise<Response> {
  requireDeleteEnabled(ctx);
  const name = repositoryName(ctx);
  const reference = parseReference(ctx.params.reference ?? "");
  const registry = ctx.registry;
  if ("tag" in reference) {
    await registry.withLock(tagsLock(name), async () => {
      if (!await resolveTag(registry, name, reference.tag)) throw manifestUnknown(reference.tag);
      await deleteTag(registry, name, reference.tag);
    });
    return new Response(null, { status: 202 });
  }
  const digest = reference.digest;
  await registry.withLock(
    tagsLock(name),
    () =>
      registry.withLock(manifestLock(name, digest), async () => {
        const revision = await readJson<Revision>(registry, revisionLinkPath(name, digest));
        if (!revision) throw manifestUnknown(digest.value);
        // Tags go first, so no tag ever names a manifest the repository no longer has.
        for (const tag of await registry.driver.list(tagsPath(name))) {
          if ((await resolveTag(registry, name, tag))?.value === digest.value) {
            await deleteTag(registry, name, tag);
          }
        }
        const subject = revision.subject && parseDigest(revision.subject);
        if (subject) await registry.driver.delete(referrerPath(name, subject, digest));
        await deleteRevision(registry, name, digest);
      }),
  );
  return new Response(null, { status: 202 });
}

export async function resolveTag(
  registry: Registry,
  name: string,
  tag: string,
): Promise<Digest | undefined> {
  const key = `${name}:${tag}`;
  const cached = registry.cache?.tags.get(key);
  if (cached) return cached;
  const bytes = await orMissing(registry.driver.get(tagPath(name, tag)));
  const digest = bytes && parseDigest(new TextDecoder().decode(bytes));
  if (digest) registry.cache?.tags.set(key, digest);
  return digest;
}

async function writeTag(registry: Registry, name: string, tag: string, digest: Digest) {
  await registry.driver.put(tagPath(name, tag), new TextEncoder().encode(digest.value));
  registry.cache?.tags.set(`${name}:${tag}`, digest);
}

/** Removes a tag; callers hold the repository's tags lock. */
export async function deleteTag(registry: Registry, name: string, tag: string): Promise<void> {
  registry.cache?.tags.delete(`${name}:${tag}`);
  await registry.driver.delete(tagPath(name, tag));
}

/** Removes a manifest from a repository; its tags and referrer entry are the caller's. */
export async function deleteRevision(registry: Registry, name: string, digest: Digest) {
  registry.cache?.manifests.delete(`${name}@${digest.value}`);
  await registry.driver.delete(revisionLinkPath(name, digest));
}

const tagsLock = (name: string) => `tags:${name}`;
const manifestLock = (name: string, digest: Digest) => `manifest:${name}@${digest.value}`;

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

interface ParsedManifest {
  mediaType: string;
  kind: "image" | "index";
  /** Blobs (config, layers) or manifests (index children) this manifest needs. */
  references: { digest: Digest; needs: "blob" | "manifest" }[];
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(reason: string): RegistryError {
  return new RegistryError("MANIFEST_INVALID", `manifest invalid: ${reason}`, {
    detail: { reason },
  });
}

/** Parses and checks a manifest's structure; the media type comes from the body or Content-Type. */
export function parseManifest(body: Uint8Array, contentType: string | null): ParsedManifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw invalid("not valid JSON");
  }
  if (!isObject(value)) throw invalid("not a JSON object");
  if (value.schemaVersion !== 2) throw invalid("schemaVersion must be 2");

  const header = contentType?.split(";")[0].trim().toLowerCase();
  const declared = value.mediaType;
  if (declared !== undefined && typeof declared !== "string") {
    throw invalid("mediaType must be a string");
  }
  if (declared && header && header in MEDIA_TYPES && declared !== header) {
    throw invalid(`mediaType ${declared} does not match Content-Type ${header}`);
  }
  const mediaType = declared && declared in MEDIA_TYPES
    ? declared
    : header && header in MEDIA_TYPES
    ? header
    : declared === undefined && Array.isArray(value.manifests)
    ? OCI_INDEX
    : declared === undefined && isObject(value.config)
    ? OCI_MANIFEST
    : undefined;
  if (!mediaType) throw invalid(`unsupported media type ${declared ?? header ?? "(none)"}`);
  const kind = MEDIA_TYPES[mediaType];

  const references: ParsedManifest["references"] = [];
  if (kind === "image") {
    const config = descriptor(value.config, "config");
    references.push({ digest: config.digest, needs: "blob" });
    if (!Array.isArray(value.layers)) throw invalid("layers must be an array");
    value.layers.forEach((layer, i) => {
      const d = descriptor(layer, `layers[${i}]`);
      // Non-distributable layers live elsewhere (their urls); they are never pushed here.
      if (!/nondistributable|foreign/.test(d.mediaType)) {
        references.push({ digest: d.digest, needs: "blob" });
      }
    });
  } else {
    if (!Array.isArray(value.manifests)) throw invalid("manifests must be an array");
    value.manifests.forEach((child, i) => {
      references.push({ digest: descriptor(child, `manifests[${i}]`).digest, needs: "manifest" });
    });
  }
  const subject = value.subject === undefined
    ? undefined
    : descriptor(value.subject, "subject").digest;
  const artifactType = typeof value.artifactType === "string"
    ? value.artifactType
    : kind === "image" && isObject(value.config) && typeof value.config.mediaType === "string"
    ? value.config.mediaType
    : undefined;
  const annotations = isObject(value.annotations)
    ? value.annotations as Record<string, string>
    : undefined;
  return { mediaType, kind, references, subject, artifactType, annotations };
}

function descriptor(value: unknown, where: string): { mediaType: string; digest: Digest } {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor`);
  if (typeof value.mediaType !== "string") throw invalid(`${where}.mediaType must be a string`);
  if (typeof value.size !== "number" || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw invalid(`${where}.size must be a non-negative integer`);
  }
  const digest = typeof value.digest === "string" ? parseDigest(value.digest) : undefined;
  if (!digest) throw invalid(`${where}.digest is not a supported digest`);
  return { mediaType: value.mediaType, digest };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks each reference under its digest's lock and pins it (src/pins.ts); the caller unpins. */
async function requireReferencesExist(
  registry: Registry,
  name: string,
  manifest: ParsedManifest,
): Promise<Digest[]> {
  const missing: string[] = [];
  const pinned: Digest[] = [];
  const checks = await Promise.allSettled(manifest.references.map(async ({ digest, needs }) => {
    const present = await pin(
      registry,
      digest,
      async () =>
        needs === "blob"
          ? await linkedBlobSize(registry, name, digest) !== undefined
          : await orMissing(registry.driver.stat(revisionLinkPath(name, digest))) !== undefined,
    );
    if (present) pinned.push(digest);
    else missing.push(digest.value);
  }));
  const failed = checks.find((c) => c.status === "rejected");
  if (failed || missing.length > 0) {
    unpin(registry.pins, pinned);
    throw failed ? failed.reason : new RegistryError(
      "MANIFEST_BLOB_UNKNOWN",
      "manifest references unknown blobs or manifests",
      { detail: { digests: missing } },
    );
  }
  return pinned;
}
