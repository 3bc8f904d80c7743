// Owns the in-memory driver: objects are chunk lists in a Map; nothing survives a restart.
// Same contract as the fs driver (tests/storage/driver_suite.ts), for tests and throwaway use.

import { concat } from "../bytes.ts";
import { checkKey, NotFoundError, type StorageDriver } from "./driver.ts";

interface MemoryObject {
  chunks: Uint8Array<ArrayBuffer>[];
  size: number;
  modified: Date;
}

export interface MemoryDriverOptions {
  /** The clock that stamps modification times (tests simulate days of pushes with it). */
  now?: () => number;
}

export function createMemoryDriver(options: MemoryDriverOptions = {}): StorageDriver {
  const now = options.now ?? Date.now;
  const objects = new Map<string, MemoryObject>();

  function lookup(key: string): MemoryObject {
    const object = objects.get(checkKey(key));
    if (!object) throw new NotFoundError(key);
    return object;
  }

  return {
    kind: "memory",

    // Promise.try: a missing or invalid key is a rejection, never a synchronous throw.
    stat: (key) =>
      Promise.try(() => {
        const { size, modified } = lookup(key);
        return { size, modified };
      }),

    get: (key) =>
      Promise.try(() => {
        const { chunks, size } = lookup(key);
        return concat(chunks, size);
      }),

    async put(key, data) {
      checkKey(key);
      const chunks: Uint8Array<ArrayBuffer>[] = [];
      let size = 0;
      for await (const chunk of data instanceof Uint8Array ? [data] : data) {
        chunks.push(chunk.slice()); // the caller may reuse its buffer
        size += chunk.length;
      }
      objects.set(key, { chunks, size, modified: new Date(now()) });
    },

    read: (key, range) =>
      Promise.try(() => {
        const { chunks, size } = lookup(key);
        const start = range?.start ?? 0;
        const end = range?.end ?? size;
        return ReadableStream.from(slices(chunks, start, end));
      }),

    async append(key, source) {
      checkKey(key);
      let object = objects.get(key);
      if (!object) {
        object = { chunks: [], size: 0, modified: new Date(now()) };
        objects.set(key, object);
      }
      for await (const chunk of source) {
        object.chunks.push(chunk.slice()); // the caller may reuse its buffer
        object.size += chunk.length;
        object.modified = new Date(now());
      }
      return object.size;
    },

    list: (prefix) =>
      Promise.try(() => {
        const base = `${checkKey(prefix)}/`;
        const names = new Set<string>();
        for (const key of objects.keys()) {
          if (key.startsWith(base)) names.add(key.slice(base.length).split("/", 1)[0]);
        }
        return [...names];
      }),

    move: (from, to) =>
      Promise.try(() => {
        checkKey(to); // before the source goes
        const object = lookup(from);
        objects.delete(from);
        objects.set(to, object);
      }),

    delete: (key) =>
      Promise.try(() => {
        checkKey(key);
        // An object is no prefix of others (as a file is no directory): one lookup, no scan.
        if (objects.delete(key)) return;
        const base = `${key}/`;
        for (const other of objects.keys()) if (other.startsWith(base)) objects.delete(other);
      }),
  };
}

function* slices(chunks: Uint8Array[], start: number, end: number): Generator<Uint8Array> {
  let offset = 0;
  for (const chunk of chunks) {
    const chunkEnd = offset + chunk.length;
    if (chunkEnd > start && offset < end) {
      yield chunk.subarray(Math.max(0, start - offset), Math.min(chunk.length, end - offset));
    }
    offset = chunkEnd;
    if (offset >= end) break;
  }
}
