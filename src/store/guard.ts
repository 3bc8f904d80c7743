// Owns how storage failures reach clients: a driver error other than "not found" becomes 503.
// Implements the spec's UNAVAILABLE for an unreachable bucket, a 5xx from it, EIO, EMFILE.

import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import { NotFoundError, type StorageDriver } from "../storage/driver.ts";
import { wrapDriver } from "../storage/wrap.ts";

/** Seconds a client is asked to wait before retrying after a storage failure. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The driver with every failure that is not `NotFoundError` logged and rethrown as UNAVAILABLE
 * (503, Retry-After). An error thrown by the caller's own source (a client that went away, a
 * digest that does not match) passes through as it was thrown: it is not the storage's.
 */
export function guardDriver(driver: StorageDriver): StorageDriver {
  // Start-up's own check (`ready`) keeps its one-line error: it is not a request's failure.
  return wrapDriver(driver, async (op, key, work, own) => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof RegistryError || own?.has(error)) {
        throw error;
      }
      log.error("storage failed", { "storage.op": op, "storage.key": key, error });
      throw new RegistryError("UNAVAILABLE", "storage is unavailable, retry later", {
        headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
        detail: { op },
      });
    }
  }, { skipReady: true });
}
