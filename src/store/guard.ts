// Owns how storage failures reach clients: a driver error other than "not found" becomes 503.
// Implements the spec's UNAVAILABLE for an unreachable bucket, a 5xx from it, EIO, EMFILE.

import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import { NotFoundError, type PutSource, type StorageDriver } from "../storage/driver.ts";

/** Seconds a client is asked to wait before retrying after a storage failure. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The driver with every failure that is not `NotFoundError` logged and rethrown as UNAVAILABLE
 * (503, Retry-After). An error thrown by the caller's own source (a client that went away, a
 * digest that does not match) passes through as it was thrown: it is not the storage's.
 */
export function guardDriver(driver: StorageDriver): StorageDriver {
  const guard = async <T>(op: string, key: string, work: () => Promise<T>, own?: Set<unknown>) => {
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
  };
  /** Runs `work` on a source whose own errors are remembered, so `guard` passes them through. */
  const withSource = <T>(
    op: string,
    key: string,
    source: PutSource | Iterable<Uint8Array>,
    work: (source: PutSource) => Promise<T>,
  ) => {
    if (source instanceof Uint8Array) return guard(op, key, () => work(source));
    const own = new Set<unknown>();
    async function* watched() {
      try {
        yield* source as AsyncIterable<Uint8Array>;
      } catch (error) {
        own.add(error);
        throw error;
      }
    }
    return guard(op, key, () => work(watched()), own);
  };
  return {
    kind: driver.kind,
    checksummed: driver.checksummed,
    stat: (key) => guard("stat", key, () => driver.stat(key)),
    get: (key) => guard("get", key, () => driver.get(key)),
    put: (key, data, options) =>
      withSource("put", key, data, (source) => driver.put(key, source, options)),
    read: (key, range) => guard("read", key, () => driver.read(key, range)),
    append: (key, chunks) =>
      withSource("append", key, chunks, (source) => driver.append(key, source as typeof chunks)),
    list: (key) => guard("list", key, () => driver.list(key)),
    move: (from, to) => guard("move", from, () => driver.move(from, to)),
    delete: (key) => guard("delete", key, () => driver.delete(key)),
    signedUrl: driver.signedUrl &&
      ((key, expiresIn) => guard("sign", key, () => driver.signedUrl!(key, expiresIn))),
    ready: driver.ready && (() => driver.ready!()),
  };
}
