// Owns what a manifest is: media types, strict parsing of pushed manifests, loose reading of stored ones.
// Implements OCI image-spec manifest.md, image-index.md, descriptor.md and Docker schema 2.

import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import { isObject } from "../fields.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/** The manifest media types this registry stores, and whether each is an image or an index. */
export const MANIFEST_KINDS: Record<string, "image" | "index"> = {
  [OCI_MANIFEST]: "image",
  [OCI_INDEX]: "index",
  [DOCKER_MANIFEST]: "image",
  [DOCKER_LIST]: "index",
};

/** What the spec and distribution accept (4 MiB); containerd refuses larger anyway. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * References (config, layers, index children) one manifest may name. Each costs a lookup under a
 * lock at PUT time; ECR's own cap on layers is of this order, real images hold a few dozen.
 */
export const MAX_REFERENCES = 4096;
/** JSON nesting a manifest may use: real ones nest 4 deep; annotations are flat string maps. */
export const MAX_NESTING = 32;

/** An OCI descriptor (image-spec descriptor.md), as indexes and referrers lists hold it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** What a repository records of each manifest revision. */
export interface Revision {
  mediaType: string;
  size: number;
  subject?: string;
}

export interface ParsedManifest {
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
  if (nestingDepth(body) > MAX_NESTING) throw invalid(`nested deeper than ${MAX_NESTING} levels`);
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
  if (declared && header && header in MANIFEST_KINDS && declared !== header) {
    throw invalid(`mediaType ${declared} does not match Content-Type ${header}`);
  }
  const mediaType = declared && declared in MANIFEST_KINDS
    ? declared
    : header && header in MANIFEST_KINDS
    ? header
    : declared === undefined && Array.isArray(value.manifests)
    ? OCI_INDEX
    : declared === undefined && isObject(value.config)
    ? OCI_MANIFEST
    : undefined;
  if (!mediaType) throw invalid(`unsupported media type ${declared ?? header ?? "(none)"}`);
  const kind = MANIFEST_KINDS[mediaType];

  const references: ParsedManifest["references"] = [];
  const add = (digest: Digest, needs: "blob" | "manifest") => {
    if (references.length >= MAX_REFERENCES) {
      throw invalid(`more than ${MAX_REFERENCES} references`);
    }
    references.push({ digest, needs });
  };
  if (kind === "image") {
    add(descriptor(value.config, "config").digest, "blob");
    if (!Array.isArray(value.layers)) throw invalid("layers must be an array");
    value.layers.forEach((layer, i) => {
      const d = descriptor(layer, `layers[${i}]`);
      // Non-distributable layers live elsewhere (their urls); they are never pushed here.
      if (!/nondistributable|foreign/.test(d.mediaType)) add(d.digest, "blob");
    });
  } else {
    if (!Array.isArray(value.manifests)) throw invalid("manifests must be an array");
    value.manifests.forEach((child, i) => {
      add(descriptor(child, `manifests[${i}]`).digest, "manifest");
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

/**
 * The deepest nesting of `{`/`[` outside strings, counted over the bytes before any parse: a
 * deeply nested body is refused without building it.
 */
export function nestingDepth(body: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

export interface ManifestReferences {
  /** Configs and layers (and any other descriptor that is not a child manifest). */
  blobs: Digest[];
  /** Children of an index or manifest list. */
  manifests: Digest[];
}

/**
 * What a stored manifest points to, read loosely (any descriptor with a digest counts), so GC
 * keeps more rather than less. Undefined when the bytes are not a JSON object.
 */
export function manifestReferences(bytes: Uint8Array): ManifestReferences | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const digestOf = (d: unknown) =>
    isObject(d) && typeof d.digest === "string" ? parseDigest(d.digest) : undefined;
  const list = (items: unknown) =>
    Array.isArray(items) ? items.map(digestOf).filter((d) => d !== undefined) : [];
  const blobs = [digestOf(value.config), ...list(value.layers), ...list(value.blobs)]
    .filter((d) => d !== undefined);
  return { blobs, manifests: list(value.manifests) };
}
