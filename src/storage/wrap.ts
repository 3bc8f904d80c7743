// Owns wrapping a storage driver: every operation, optional ones included, passes through one
// function, with errors of the caller's own source told apart (guard, metrics, and what follows).

import type { PutSource, StorageDriver } from "./driver.ts";

/**
 * What a wrapper does around each operation: `work` is the driver's call; `own` holds the errors
 * thrown by the caller's own source (a client that went away, a digest that did not match),
 * which a wrapper passes on as they are: they are not the storage's failure.
 */
export type Around = <T>(
  op: string,
  key: string,
  work: () => Promise<T>,
  own?: ReadonlySet<unknown>,
) => Promise<T>;

/** The driver with every operation run through `around`; `ready` too unless `skipReady`. */
export function wrapDriver(
  driver: StorageDriver,
  around: Around,
  options: { skipReady?: boolean } = {},
): StorageDriver {
  const withSource = <T>(
    op: string,
    key: string,
    source: PutSource | Iterable<Uint8Array>,
    work: (source: PutSource) => Promise<T>,
  ) => {
    if (source instanceof Uint8Array) return around(op, key, () => work(source));
    const own = new Set<unknown>();
    return around(op, key, () => work(watched(source, own)), own);
  };
  return {
    kind: driver.kind,
    checksummed: driver.checksummed,
    stat: (key) => around("stat", key, () => driver.stat(key)),
    get: (key) => around("get", key, () => driver.get(key)),
    put: (key, data, options) =>
      withSource("put", key, data, (source) => driver.put(key, source, options)),
    // The stream itself is returned as it is: a file's stream is sent without passing through JS.
    read: (key, range) => around("read", key, () => driver.read(key, range)),
    append: (key, chunks) =>
      withSource("append", key, chunks, (source) => driver.append(key, source as typeof chunks)),
    list: (key) => around("list", key, () => driver.list(key)),
    move: (from, to) => around("move", from, () => driver.move(from, to)),
    delete: (key) => around("delete", key, () => driver.delete(key)),
    signedUrl: driver.signedUrl &&
      ((key, expiresIn) => around("sign", key, () => driver.signedUrl!(key, expiresIn))),
    ready: driver.ready &&
      (options.skipReady
        ? () => driver.ready!()
        : () => around("ready", "", () => driver.ready!())),
  };
}

/** The source, with the errors it throws itself remembered in `own`. */
async function* watched(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  own: Set<unknown>,
): AsyncGenerator<Uint8Array> {
  try {
    yield* source;
  } catch (error) {
    own.add(error);
    throw error;
  }
}
