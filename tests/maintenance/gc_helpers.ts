// Helpers for the GC, fsck and crash tests: layered images with shared layers, byte-exact pulls,
// a seeded PRNG, and storage probes. Builds on tests/helpers.ts.

import { parseDigest } from "../../src/grammar.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { blobPath } from "../../src/storage/paths.ts";
import {
  assertEquals,
  buildImage,
  type BuiltImage,
  type Bytes,
  digest,
  OCI_MANIFEST,
  pushBuiltImage,
  type RegistryClient,
} from "../helpers.ts";

export type LayeredImage = BuiltImage;
export { buildImage };

/** Pushes config, layers and manifest (by tag, or by digest when `tag` is undefined). */
export function pushLayeredImage(
  client: RegistryClient,
  name: string,
  tag: string | undefined,
  layers: Bytes[],
  seed: number,
): Promise<LayeredImage> {
  return pushBuiltImage(client, name, tag, buildImage(layers, seed));
}

/** Pulls the manifest and every blob, and checks each byte for byte. */
export async function pullImage(
  client: RegistryClient,
  name: string,
  reference: string,
  image: LayeredImage,
): Promise<void> {
  const res = await client.get(`/v2/${name}/manifests/${reference}`, { accept: OCI_MANIFEST });
  assertEquals(res.status, 200, `pull ${name}:${reference}: ${res.text}`);
  assertEquals(digest(res.body), image.digest, `manifest of ${name}:${reference}`);
  for (const blob of [image.config, ...image.layers]) {
    const got = await client.get(`/v2/${name}/blobs/${digest(blob)}`);
    assertEquals(got.status, 200, `blob ${digest(blob)} of ${name}:${reference}`);
    assertEquals(digest(got.body), digest(blob), `bytes of ${digest(blob)}`);
  }
}

/** Whether the store holds a blob's bytes (whatever links say). */
export async function exists(driver: StorageDriver, value: string): Promise<boolean> {
  try {
    await driver.stat(blobPath(parseDigest(value)!));
    return true;
  } catch {
    return false;
  }
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
