// Owns the UI's view of one manifest (config, layers with history, children, referrers) and its delete.
// Implements the reading side of OCI image-spec config.md (history ↔ layers) and the referrers API.

import { parseReference } from "../grammar.ts";
import { type Context, json, repositoryName } from "../http.ts";
import { isObject } from "../fields.ts";
import { forgetRepository, tagsOf } from "./browse.ts";
import {
  descriptorOf,
  descriptors,
  type ImageConfig,
  isAttestation,
  manifestFacts,
  platformOf,
  readConfig,
  readManifest,
} from "./oci.ts";
import { mayDelete, requireSameOrigin } from "./session.ts";

/** Referrers listed on a manifest's page (the API pages through the rest). */
const REFERRERS_SHOWN = 200;

export interface LayerRow {
  digest: string;
  mediaType: string;
  size: number;
  annotations?: Record<string, string>;
  /** The history line that made it (`created_by`), when the config's history lines up. */
  createdBy?: string;
  created?: string;
}

/** The config fields a person reads, in the order the page shows them. */
export function configSummary(config: ImageConfig | undefined) {
  if (!config) return undefined;
  const inner = isObject(config.config) ? config.config : {};
  return {
    created: config.created,
    author: config.author,
    platform: platformOf(config),
    entrypoint: inner.Entrypoint ?? undefined,
    cmd: inner.Cmd ?? undefined,
    workingDir: inner.WorkingDir || undefined,
    user: inner.User || undefined,
    env: inner.Env ?? undefined,
    exposedPorts: inner.ExposedPorts ? Object.keys(inner.ExposedPorts) : undefined,
    volumes: inner.Volumes ? Object.keys(inner.Volumes) : undefined,
    labels: inner.Labels ?? undefined,
    stopSignal: inner.StopSignal || undefined,
  };
}

/**
 * Pairs layers with the history lines that made them: lines marked `empty_layer` made none, the
 * others one each, in order (config.md). Lines that do not line up are left unpaired.
 */
export function layersWithHistory(
  layers: { digest: string; mediaType: string; size: number }[],
  config: ImageConfig | undefined,
): LayerRow[] {
  const rows: LayerRow[] = layers.map((layer) => ({ ...layer }));
  const made = (config?.history ?? []).filter((line) => isObject(line) && !line.empty_layer);
  if (made.length !== layers.length) return rows;
  made.forEach((line, i) => {
    if (typeof line.created_by === "string") rows[i].createdBy = line.created_by;
    if (typeof line.created === "string") rows[i].created = line.created;
  });
  return rows;
}

/** GET /ui/api/r/<name>/manifests/<reference> — everything the manifest page shows. */
export async function describeManifest(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const reference = ctx.params.reference ?? "";
  const manifest = await readManifest(ctx, name, reference);
  const { json: body } = manifest;
  const facts = await manifestFacts(ctx, name, manifest);
  const annotations = isObject(body.annotations) ? body.annotations : undefined;
  const subject = descriptorOf(body.subject);
  const referrers = await ctx.store.referrers(name, manifest.digest, { n: REFERRERS_SHOWN });
  const view: Record<string, unknown> = {
    name,
    reference,
    ...facts,
    manifestSize: new TextEncoder().encode(manifest.text).length,
    tags: await tagsOf(ctx, name, manifest.digest.value),
    annotations,
    subject,
    referrers: referrers.items,
    moreReferrers: referrers.next !== undefined,
    raw: manifest.text,
    canDelete: mayDelete(ctx, name),
  };
  if (manifest.kind === "index") {
    view.manifests = descriptors(body.manifests).map((child) => ({
      ...child,
      platform: platformOf(child.platform),
      attestation: isAttestation(child),
    }));
  } else {
    const configDescriptor = descriptorOf(body.config);
    const config = await readConfig(ctx, name, configDescriptor);
    view.config = configDescriptor && { ...configDescriptor, summary: configSummary(config) };
    view.layers = layersWithHistory(descriptors(body.layers), config);
    view.history = config?.history?.filter(isObject) ?? [];
  }
  return json(view);
}

/**
 * DELETE /ui/api/r/<name>/manifests/<reference> — a tag (the tag only) or a manifest by digest
 * (with its tags), through the store's delete, as the API's DELETE does.
 */
export async function deleteManifest(ctx: Context): Promise<Response> {
  await requireSameOrigin(ctx);
  const name = repositoryName(ctx);
  const reference = parseReference(ctx.params.reference ?? "");
  await ctx.store.manifests.delete(name, reference);
  forgetRepository(ctx, name);
  return json({ deleted: ctx.params.reference }, { status: 202 });
}
