// Owns the inventory pass: repositories, blobs and their bytes counted for the metrics' gauges.
// No spec section: run in the background (first scrape, hourly, after GC), never during a scrape.

import { log } from "../log.ts";
import { mapPool } from "../pool.ts";
import type { StorageDriver } from "../storage/driver.ts";
import { blobPath, MANIFESTS } from "../storage/paths.ts";
import { orMissing } from "../store/state.ts";
import { listBlobs, walkRepositories } from "../store/inventory.ts";
import type { InventoryCounts } from "./metrics.ts";

/** Blob sizes read at once: a background pass, it leaves the storage to the requests. */
const STAT_POOL = 4;

/**
 * Counts what storage holds (repositories holding manifests, blobs, their bytes): one listing per
 * level and one stat per blob. Undefined when `signal` stopped it midway.
 */
export async function takeInventory(
  driver: StorageDriver,
  signal?: AbortSignal,
): Promise<InventoryCounts | undefined> {
  const started = performance.now();
  const repositories = (await walkRepositories(driver, [MANIFESTS])).length;
  const { digests } = await listBlobs(driver);
  let bytes = 0;
  await mapPool(digests, STAT_POOL, async (digest) => {
    if (signal?.aborted) return;
    const info = await orMissing(driver.stat(blobPath(digest)));
    bytes += info?.size ?? 0;
  });
  if (signal?.aborted) return undefined;
  const counts = { repositories, blobs: digests.length, bytes };
  log.info("inventory finished", {
    "inventory.repositories": counts.repositories,
    "inventory.blobs": counts.blobs,
    "inventory.bytes": counts.bytes,
    "duration_ms": Math.round(performance.now() - started),
  });
  return counts;
}
