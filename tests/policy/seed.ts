// Test fixtures for policies: a store on a memory driver whose clock the test moves, and images
// pushed straight through the store (no HTTP), so a simulated week of CI pushes takes a second.

import { parseDigest } from "../../src/grammar.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { createStore, type Store } from "../../src/store/store.ts";
import {
  buildImage,
  type BuiltImage,
  descriptorOf,
  digest,
  imageIndex,
  imageManifest,
  jsonBytes,
  OCI_INDEX,
  OCI_MANIFEST,
  randomBytes,
} from "../helpers.ts";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** The simulated week starts here (a Sunday), far from the real clock. */
export const T0 = Date.UTC(2026, 10, 1);

export interface Clock {
  now(): number;
  set(ms: number): void;
}

export function clock(start = T0): Clock {
  let at = start;
  return { now: () => at, set: (ms) => at = ms };
}

/** A store whose storage stamps times from `time`, recording pulls as a server does. */
export function seededStore(time: Clock, options: { recordPulls?: boolean } = {}): Store {
  const driver = createMemoryDriver({ now: time.now });
  return createStore({ driver, recordPulls: options.recordPulls ?? true });
}

/** Pushes a small image (config + one layer + manifest) under a tag, or by digest. */
export async function pushImage(
  store: Store,
  name: string,
  tag: string | undefined,
  seed: number,
): Promise<BuiltImage> {
  const image = buildImage([randomBytes(200, seed)], seed);
  for (const blob of [image.config, ...image.layers]) {
    await store.uploads.commit(name, parseDigest(digest(blob))!, chunksOf(blob));
  }
  const reference = tag === undefined ? { digest: parseDigest(image.digest)! } : { tag };
  await store.manifests.put(name, reference, image.manifest, OCI_MANIFEST);
  return image;
}

/** Pushes an artifact whose subject is `subject` (a signature), by digest. */
export async function pushReferrer(
  store: Store,
  name: string,
  subject: BuiltImage,
  seed: number,
): Promise<string> {
  const config = jsonBytes({});
  const layer = randomBytes(100, seed);
  for (const blob of [config, layer]) {
    await store.uploads.commit(name, parseDigest(digest(blob))!, chunksOf(blob));
  }
  const manifest = jsonBytes(imageManifest({
    config: descriptorOf("application/vnd.oci.empty.v1+json", config),
    layers: [descriptorOf("application/octet-stream", layer)],
    artifactType: "application/vnd.example.signature",
    subject: subject.descriptor,
  }));
  await store.manifests.put(
    name,
    { digest: parseDigest(digest(manifest))! },
    manifest,
    OCI_MANIFEST,
  );
  return digest(manifest);
}

/** Pushes an index over `children` (pushed by digest first) under a tag. */
export async function pushIndex(
  store: Store,
  name: string,
  tag: string,
  seeds: number[],
): Promise<{ index: string; children: string[] }> {
  const children: BuiltImage[] = [];
  for (const seed of seeds) children.push(await pushImage(store, name, undefined, seed));
  const index = jsonBytes(imageIndex(children.map((c) => c.descriptor)));
  await store.manifests.put(name, { tag }, index, OCI_INDEX);
  return { index: digest(index), children: children.map((c) => c.digest) };
}

/** Every tag of a repository (all pages). */
export async function allTags(store: Store, name: string): Promise<string[]> {
  return (await store.tags(name, { n: 1_000_000 })).items;
}

/** Bytes as the store takes a body. */
export async function* chunksOf(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}
