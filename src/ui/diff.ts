// Owns the difference between two tags (or digests) of a repository: layers and config changes.
// No spec section: compares OCI image manifests and configs (image-spec manifest.md, config.md).

import { RegistryError } from "../errors.ts";
import { type Context, json, repositoryName } from "../http.ts";
import { configSummary, type LayerRow, layersWithHistory } from "./image.ts";
import {
  descriptorOf,
  descriptors,
  isAttestation,
  type Platform,
  platformName,
  platformOf,
  readConfig,
  readManifest,
} from "./oci.ts";

interface Side {
  reference: string;
  digest: string;
  /** The index's digest when the side is one platform of an index. */
  index?: string;
  platform?: string;
  layers: LayerRow[];
  summary: ReturnType<typeof configSummary>;
  size: number;
}

export interface LayerChange extends LayerRow {
  status: "shared" | "added" | "removed";
}

export interface ConfigChange {
  field: string;
  before?: string;
  after?: string;
}

/** An image of a reference: the reference's own, or for an index its child for `platform`. */
async function resolveSide(
  ctx: Context,
  name: string,
  reference: string,
  platform: string | undefined,
): Promise<{ side: Side; platforms: string[] }> {
  let manifest = await readManifest(ctx, name, reference);
  let index: string | undefined;
  let platforms: string[] = [];
  let chosen: string | undefined;
  if (manifest.kind === "index") {
    const children = descriptors(manifest.json.manifests).filter((child) => !isAttestation(child))
      .map((child) => ({ child, platform: platformOf(child.platform) }));
    platforms = children.map(({ platform }) => platform ? platformName(platform) : "unknown");
    const pick = children.find(({ platform: p }) => p && platformName(p) === platform) ??
      children.find(({ platform: p }) => p && platformName(p) === "linux/amd64") ?? children[0];
    if (!pick) {
      throw new RegistryError("MANIFEST_UNKNOWN", "the index lists no image", {
        detail: { reference },
      });
    }
    index = manifest.digest.value;
    chosen = pick.platform && platformName(pick.platform as Platform);
    manifest = await readManifest(ctx, name, pick.child.digest);
  }
  const configDescriptor = descriptorOf(manifest.json.config);
  const config = await readConfig(ctx, name, configDescriptor);
  const layers = layersWithHistory(descriptors(manifest.json.layers), config);
  const summary = configSummary(config);
  return {
    side: {
      reference,
      digest: manifest.digest.value,
      index,
      platform: chosen ?? (summary?.platform && platformName(summary.platform)),
      layers,
      summary,
      size: layers.reduce((total, layer) => total + layer.size, 0) + (configDescriptor?.size ?? 0),
    },
    platforms,
  };
}

/** Layers of `to` in order (shared or added), then those only `from` had (removed). */
export function compareLayers(from: LayerRow[], to: LayerRow[]): LayerChange[] {
  const before = new Set(from.map((layer) => layer.digest));
  const after = new Set(to.map((layer) => layer.digest));
  return [
    ...to.map((layer) => ({
      ...layer,
      status: before.has(layer.digest) ? "shared" as const : "added" as const,
    })),
    ...from.filter((layer) => !after.has(layer.digest))
      .map((layer) => ({ ...layer, status: "removed" as const })),
  ];
}

const show = (value: unknown): string | undefined =>
  value === undefined || value === null
    ? undefined
    : typeof value === "string"
    ? value
    : Array.isArray(value)
    ? value.map(String).join(" ")
    : JSON.stringify(value);

/** Entries of a `KEY=value` list or a map, by key. */
function keyed(value: unknown): Map<string, string> {
  if (Array.isArray(value)) {
    return new Map(value.map((item) => {
      const text = String(item);
      const equals = text.indexOf("=");
      return equals < 0 ? [text, ""] : [text.slice(0, equals), text.slice(equals + 1)];
    }));
  }
  if (value && typeof value === "object") {
    return new Map(Object.entries(value).map(([key, item]) => [key, String(item)]));
  }
  return new Map();
}

/** What changed between two config summaries, field by field; env and labels key by key. */
export function compareConfigs(
  from: Side["summary"],
  to: Side["summary"],
): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const fields = [
    "created",
    "author",
    "entrypoint",
    "cmd",
    "workingDir",
    "user",
    "exposedPorts",
    "volumes",
    "stopSignal",
  ] as const;
  const platform = (summary: Side["summary"]) =>
    summary?.platform && platformName(summary.platform);
  if (platform(from) !== platform(to)) {
    changes.push({ field: "platform", before: platform(from), after: platform(to) });
  }
  for (const field of fields) {
    const before = show(from?.[field]);
    const after = show(to?.[field]);
    if (before !== after) changes.push({ field, before, after });
  }
  for (const [field, prefix] of [["env", "env "], ["labels", "label "]] as const) {
    const before = keyed(from?.[field]);
    const after = keyed(to?.[field]);
    for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      if (before.get(key) !== after.get(key)) {
        changes.push({ field: prefix + key, before: before.get(key), after: after.get(key) });
      }
    }
  }
  return changes;
}

/** GET /ui/api/r/<name>/diff?from=&to=&platform= — layers added, removed, shared; config changes. */
export async function diffManifests(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const params = ctx.url.searchParams;
  const fromRef = params.get("from");
  const toRef = params.get("to");
  if (!fromRef || !toRef) {
    throw new RegistryError("MANIFEST_UNKNOWN", "give two references: ?from=&to=", {
      status: 400,
    });
  }
  const platform = params.get("platform") ?? undefined;
  const [from, to] = await Promise.all([
    resolveSide(ctx, name, fromRef, platform),
    resolveSide(ctx, name, toRef, platform ?? undefined),
  ]);
  const layers = compareLayers(from.side.layers, to.side.layers);
  const total = (status: LayerChange["status"]) => {
    const matching = layers.filter((layer) => layer.status === status);
    return { count: matching.length, size: matching.reduce((sum, layer) => sum + layer.size, 0) };
  };
  return json({
    name,
    from: { ...from.side, layers: undefined },
    to: { ...to.side, layers: undefined },
    platforms: [...new Set([...from.platforms, ...to.platforms])],
    layers,
    totals: { added: total("added"), removed: total("removed"), shared: total("shared") },
    changes: compareConfigs(from.side.summary, to.side.summary),
  });
}
