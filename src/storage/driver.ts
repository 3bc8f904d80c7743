// Owns the storage-driver contract: path keys to bytes, with no OCI knowledge.
// Every driver (fs, memory, later S3) implements it and passes tests/storage/driver_suite.ts.

/** Keys are relative `/`-separated paths, e.g. `blobs/sha256/ab/ab12…`. */
export interface FileInfo {
  size: number;
  modified: Date;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, exclusive. */
  end: number;
}

export interface StorageDriver {
  readonly kind: string;
  /**
   * True when the store checksums what it keeps and fails a read rather than return rotten
   * bytes (S3: Ceph BlueStore's crc32c, AWS's own checks), so reads need no re-hash.
   */
  readonly checksummed?: boolean;
  /** Size and modification time of an object; throws NotFoundError. */
  stat(key: string): Promise<FileInfo>;
  /** A whole small object (links, manifests); throws NotFoundError. */
  get(key: string): Promise<Uint8Array<ArrayBuffer>>;
  /**
   * Replaces an object so that readers see the old or the new bytes, never a mix. From a
   * stream, the object appears only once the source has ended; when the source throws, nothing
   * changes and its error is rethrown (so a source can veto the write at its end).
   */
  put(key: string, data: PutSource, options?: PutOptions): Promise<void>;
  /** Streams an object, or a range of it; throws NotFoundError. */
  read(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
  /**
   * Appends the chunks to an object, creating it; resolves to the object's new size.
   * Bytes already appended stay when the source fails midway.
   */
  append(key: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number>;
  /** Names directly under a prefix (objects and sub-prefixes), unsorted; [] when there are none. */
  list(prefix: string): Promise<string[]>;
  /**
   * Moves an object; when it resolves the destination is complete and durable.
   * Not atomic with respect to the source: callers must not rely on the source vanishing at once.
   * Throws NotFoundError when the source is missing.
   */
  move(from: string, to: string): Promise<void>;
  /** Deletes an object or everything under a prefix; absent keys are not an error. */
  delete(key: string): Promise<void>;
  /**
   * Optional: a URL where anyone holding it may GET the object (or a range of it) for
   * `expiresIn` seconds, without credentials (S3: a presigned URL). The object need not exist.
   */
  signedUrl?(key: string, expiresIn: number): Promise<string>;
  /** Optional start-up check that the backing store is reachable; rejects with one clear line. */
  ready?(): Promise<void>;
}

/** Whole bytes, or chunks the caller may reuse once the next one is asked for. */
export type PutSource = Uint8Array | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /**
   * Default true: on disk when it resolves. False: never torn, but a machine crash may lose it;
   * for state a client can recreate (an upload session), saving a disk flush per request.
   */
  durable?: boolean;
}

/** A driver's only error of its own: the key does not exist. */
export class NotFoundError extends Error {
  constructor(key: string) {
    super(`not found: ${key}`);
    this.name = "NotFoundError";
  }
}

/** Rejects keys that could escape the storage root or name temp files. */
export function checkKey(key: string): string {
  const segments = key.split("/");
  if (key === "" || segments.some((s) => s === "" || s === "." || s === ".." || s[0] === ".")) {
    throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
  }
  return key;
}
