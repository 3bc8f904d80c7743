// Owns reading images for the web UI: manifests as JSON, image configs (cached), sizes and platforms.
// Implements the reading side of OCI image-spec manifest.md, image-index.md, config.md (and Docker's).

import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest, parseReference } from "../grammar.ts";
import type { Context } from "../http.ts";
import { isObject } from "../fields.ts";
import { type Descriptor, DOCKER_CONFIG, MANIFEST_KINDS, OCI_CONFIG } from "../oci/manifest.ts";
import { mapPool } from "../pool.ts";
import type { ImageConfig } from "./state.ts";

export type { ImageConfig };

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ReadManifest {
  digest: Digest;
  mediaType: string;
  /** The manifest's exact bytes as text, and parsed. */
  text: string;
  json: Record<string, unknown>;
  kind: "image" | "index" | "artifact";
}

/** What a listing row shows of a manifest. */
export interface ManifestFacts {
  digest: string;
  mediaType: string;
  kind: "image" | "index" | "artifact";
  artifactType?: string;
  /** Compressed bytes a pull moves: config and layers, every child's for an index. */
  size: number;
  platforms: Platform[];
  /** From the config (the newest child's for an index). */
  created?: string;
}

/** Configs larger than this are not read (real ones are a few KiB). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const CHILD_POOL = 4;
const IMAGE_CONFIGS = new Set([OCI_CONFIG, DOCKER_CONFIG]);

export function manifestUnknown(reference: string): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", undefined, { detail: { reference } });
}

/** A repository's manifest by tag or digest, parsed; MANIFEST_UNKNOWN when it has none. */
export async function readManifest(
  ctx: Context,
  name: string,
  reference: string,
): Promise<ReadManifest> {
  let parsed;
  try {
    parsed = parseReference(reference);
  } catch {
    throw manifestUnknown(reference);
  }
  const stored = await ctx.store.manifests.get(name, parsed);
  if (!stored) throw manifestUnknown(reference);
  const text = new TextDecoder().decode(stored.bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const value = isObject(json) ? json : {};
  return {
    digest: stored.digest,
    mediaType: stored.mediaType,
    text,
    json: value,
    kind: kindOf(stored.mediaType, value),
  };
}

function kindOf(mediaType: string, json: Record<string, unknown>): ReadManifest["kind"] {
  if (MANIFEST_KINDS[mediaType] === "index") return "index";
  const config = isObject(json.config) ? json.config : {};
  const configType = typeof config.mediaType === "string" ? config.mediaType : "";
  return typeof json.artifactType === "string" || !IMAGE_CONFIGS.has(configType)
    ? "artifact"
    : "image";
}

/** Descriptors of a list field (layers, manifests), the malformed ones left out. */
export function descriptors(value: unknown): Descriptor[] {
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is Descriptor =>
    isObject(item) && typeof item.digest === "string" && typeof item.mediaType === "string" &&
    typeof item.size === "number"
  );
}

export function descriptorOf(value: unknown): Descriptor | undefined {
  return descriptors([value])[0];
}

/** A blob the repository serves, read whole when it is small enough; undefined otherwise. */
export async function readSmallBlob(
  ctx: Context,
  name: string,
  digest: Digest,
  limit: number,
): Promise<Uint8Array | undefined> {
  const size = await ctx.store.blobs.size(name, digest);
  if (size === undefined || size > limit) return undefined;
  const bytes = new Uint8Array(
    await new Response(await ctx.store.blobs.read(name, digest)).arrayBuffer(),
  );
  return bytes;
}

/** An image's config by its descriptor (cached by digest); undefined if unreadable or absent. */
export async function readConfig(
  ctx: Context,
  name: string,
  descriptor: Descriptor | undefined,
): Promise<ImageConfig | undefined> {
  const digest = descriptor && parseDigest(descriptor.digest);
  if (!digest || !IMAGE_CONFIGS.has(descriptor.mediaType)) return undefined;
  const cached = ctx.ui!.configs.get(digest.value);
  if (cached) return cached;
  const bytes = await readSmallBlob(ctx, name, digest, MAX_CONFIG_BYTES);
  if (!bytes) return undefined;
  let config: unknown;
  try {
    config = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  if (!isObject(config)) return undefined;
  ctx.ui!.configs.set(digest.value, config as ImageConfig, bytes.length);
  return config as ImageConfig;
}

export function platformOf(value: unknown): Platform | undefined {
  if (!isObject(value) || typeof value.os !== "string" || typeof value.architecture !== "string") {
    return undefined;
  }
  const platform: Platform = { os: value.os, architecture: value.architecture };
  if (typeof value.variant === "string" && value.variant) platform.variant = value.variant;
  return platform;
}

/** An index child that describes the image beside it (buildx attestations), not a platform. */
export function isAttestation(child: Descriptor): boolean {
  const platform = platformOf(child.platform);
  return child.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" ||
    (platform?.os === "unknown" && platform.architecture === "unknown");
}

const sum = (items: { size: number }[]) => items.reduce((total, item) => total + item.size, 0);

/** The facts a tag row shows: kind, compressed size, platforms, created. */
export async function manifestFacts(
  ctx: Context,
  name: string,
  manifest: ReadManifest,
): Promise<ManifestFacts> {
  const { json } = manifest;
  const facts: ManifestFacts = {
    digest: manifest.digest.value,
    mediaType: manifest.mediaType,
    kind: manifest.kind,
    size: 0,
    platforms: [],
  };
  if (typeof json.artifactType === "string") facts.artifactType = json.artifactType;
  if (manifest.kind !== "index") {
    const config = descriptorOf(json.config);
    facts.size = sum(descriptors(json.layers)) + (config?.size ?? 0);
    if (manifest.kind === "artifact") {
      facts.artifactType ??= config?.mediaType;
      return facts;
    }
    const image = await readConfig(ctx, name, config);
    const platform = platformOf(image);
    if (platform) facts.platforms.push(platform);
    if (image?.created) facts.created = image.created;
    return facts;
  }
  const children = descriptors(json.manifests).filter((child) => !isAttestation(child));
  const childFacts = await mapPool(children, CHILD_POOL, async (child) => {
    try {
      return await manifestFacts(ctx, name, await readManifest(ctx, name, child.digest));
    } catch {
      return undefined; // a child this repository lacks: its descriptor still names it
    }
  });
  children.forEach((child, i) => {
    const platform = platformOf(child.platform) ?? childFacts[i]?.platforms[0];
    if (platform) facts.platforms.push(platform);
    facts.size += childFacts[i]?.size ?? child.size;
    const created = childFacts[i]?.created;
    if (created && (!facts.created || created > facts.created)) facts.created = created;
  });
  return facts;
}

/** `os/arch[/variant]`. */
export const platformName = (platform: Platform) =>
  [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
