// Owns the S3 driver, the S3 entry point: the StorageDriver contract mapped onto S3 objects.
// Implements src/storage/driver.ts on the Amazon S3 API (client.ts signs, multipart.ts streams).

/**
 * How the contract maps onto S3 (tested against Ceph's RADOS Gateway):
 *
 * - `put` is one PUT (atomic per object on S3); from a stream, a multipart upload that only
 *   CompleteMultipartUpload makes visible (aborted when the source fails). `get`/`read`/`stat`
 *   are GET/HEAD.
 * - An appended object is a run of segments `<key>/.a/<seq>-<offset>`, each written by one
 *   `append` call, created with `If-None-Match: *` so two writers can never claim the same slot.
 *   A segment larger than one part streams into a multipart upload (parts of `partSize` bytes
 *   from a small pool of reused buffers, a few in flight), so a blob is never whole in memory.
 *   `stat` of an appended object is HEAD (404) plus one listing of its segments.
 *   When a plain object exists it wins over segments (which are then left-overs to delete).
 * - `move` copies server-side: CopyObject of the plain object or of a lone segment (RGW shares
 *   the tail data, no bytes move), else a multipart upload assembled with UploadPartCopy (and
 *   re-uploaded bytes for segments under the 5 MiB part minimum); the source goes afterwards.
 * - `list` is ListObjectsV2 with delimiter `/`, paginated; names starting with `.` are hidden.
 * - `delete` removes the object and everything under `<key>/` with batched DeleteObjects.
 * - `signedUrl` presigns a GET (SigV4 in the query string): only plain objects can be served
 *   that way, and blobs always are plain objects (a put, or a move's copy or compose).
 */

import {
  type ByteRange,
  checkKey,
  type FileInfo,
  NotFoundError,
  type StorageDriver,
} from "../driver.ts";
import {
  createS3Client,
  parseContents,
  type S3ClientOptions,
  S3Error,
  xmlBlocks,
  xmlValue,
} from "./client.ts";
import { createMultipartWriter, type MultipartOptions } from "./multipart.ts";

export { S3Error } from "./client.ts";

export interface S3Options extends S3ClientOptions, MultipartOptions {
  /** Key prefix inside the bucket (no leading or trailing `/` needed). */
  prefix?: string;
}

export interface S3Driver extends StorageDriver {
  readonly kind: "s3";
  readonly checksummed: true;
  /** Lists one key of the bucket: resolves when it is reachable with these credentials. */
  ready(): Promise<void>;
  /** A presigned GET URL (SigV4 query), for clients sent to the bucket (`--s3-redirect`). */
  signedUrl(key: string, expiresIn: number): Promise<string>;
}

const SEGMENTS = ".a";

interface Segment {
  /** Full S3 key. */
  key: string;
  seq: number;
  offset: number;
  size: number;
  modified: Date;
}

export function createS3Driver(options: S3Options): S3Driver {
  const root = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
  const full = (key: string) => (root ? `${root}/${checkKey(key)}` : checkKey(key));
  const s3 = createS3Client(options);
  const { writeStream, copyObject, compose } = createMultipartWriter(s3, options);
  const { call, head, listAll, listPages, keysUnder, putObject, deleteKeys } = s3;

  /** The segments of an appended object, in order; [] when it has none. */
  async function segments(key: string): Promise<Segment[]> {
    const prefix = `${key}/${SEGMENTS}/`;
    const found: Segment[] = [];
    for await (const page of listAll(prefix)) {
      for (const object of page) {
        const match = /^(\d+)-(\d+)$/.exec(object.key.slice(prefix.length));
        if (match) {
          found.push({ ...object, seq: Number(match[1]), offset: Number(match[2]) });
        }
      }
    }
    found.sort((a, b) => a.seq - b.seq);
    // Each segment starts where the previous ended: anything else is a torn append.
    let offset = 0;
    for (const segment of found) {
      if (segment.offset !== offset) {
        throw new Error(`s3: appended object ${key} is inconsistent at offset ${offset}`);
      }
      offset += segment.size;
    }
    return found;
  }

  /** Every segment key of an object, consistent or not (for deletion). */
  const segmentKeys = (key: string) => keysUnder(`${key}/${SEGMENTS}/`);

  const segmentKey = (key: string, seq: number, offset: number) =>
    `${key}/${SEGMENTS}/${String(seq).padStart(10, "0")}-${String(offset).padStart(16, "0")}`;

  async function readPlain(key: string, range?: ByteRange): Promise<Response | undefined> {
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end - 1}`;
    const response = await call({ method: "GET", key, headers, accept: [404], timeoutMs: 0 });
    if (response.status !== 404) return response;
    await response.body?.cancel();
    return undefined;
  }

  function readSegments(list: Segment[], range?: ByteRange): ReadableStream<Uint8Array> {
    const total = list.reduce((sum, s) => sum + s.size, 0);
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? total, total);
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (const segment of list) {
        const from = Math.max(start, segment.offset);
        const to = Math.min(end, segment.offset + segment.size);
        if (from >= to) continue;
        const response = await call({
          method: "GET",
          key: segment.key,
          headers: { range: `bytes=${from - segment.offset}-${to - segment.offset - 1}` },
          timeoutMs: 0,
        });
        const body = response.body!;
        try {
          yield* body;
        } finally {
          await body.cancel().catch(() => {});
        }
      }
    }
    return ReadableStream.from(pieces());
  }

  async function statOf(key: string): Promise<FileInfo> {
    const plain = await head(full(key));
    if (plain) return plain;
    const list = await segments(full(key));
    if (list.length === 0) throw new NotFoundError(key);
    return {
      size: list.reduce((sum, s) => sum + s.size, 0),
      modified: new Date(Math.max(...list.map((s) => s.modified.getTime()))),
    };
  }

  return {
    kind: "s3",
    checksummed: true,

    async ready() {
      try {
        const response = await call({
          method: "GET",
          query: { "list-type": "2", "max-keys": "1", prefix: root ? `${root}/` : "" },
          timeoutMs: 10_000,
        });
        await response.body?.cancel();
      } catch (error) {
        const { status = 0, code = "NetworkError" } = error as Partial<S3Error>;
        const reason = (error as Error).message.replace(/^s3 \S+ \S+: /, "");
        throw new S3Error(
          `cannot use S3 bucket ${s3.bucket} at ${s3.origin}: ${reason}`.split("\n")[0],
          status,
          code,
        );
      }
    },

    stat: (key) => statOf(key),

    signedUrl: (key, expiresIn) => s3.presign(full(key), expiresIn),

    async get(key) {
      const response = await readPlain(full(key));
      if (response) return new Uint8Array(await response.arrayBuffer());
      const list = await segments(full(key));
      if (list.length === 0) throw new NotFoundError(key);
      return new Uint8Array(await new Response(readSegments(list)).arrayBuffer());
    },

    async put(key, data) {
      if (data instanceof Uint8Array) return putObject(full(key), data);
      const options = { createOnly: false, skipEmpty: false, atomic: true };
      await writeStream(full(key), data, options);
    },

    async read(key, range) {
      const k = full(key);
      if (range && range.end <= range.start) {
        await statOf(key);
        return new ReadableStream({ start: (c) => c.close() });
      }
      const response = await readPlain(k, range);
      if (response) return response.body ?? new ReadableStream({ start: (c) => c.close() });
      const list = await segments(k);
      if (list.length === 0) throw new NotFoundError(key);
      return readSegments(list, range);
    },

    async append(key, chunks) {
      const k = full(key);
      const [plain, listed] = await Promise.all([head(k), segments(k).catch((e) => e as Error)]);
      let list: Segment[];
      if (plain) {
        // An object made by put (it wins over older segments) becomes the first segment.
        await deleteKeys(await segmentKeys(k));
        const first = segmentKey(k, 0, 0);
        await copyObject(k, first, plain.size);
        await call({ method: "DELETE", key: k }).then((r) => r.body?.cancel());
        list = [{ key: first, seq: 0, offset: 0, size: plain.size, modified: plain.modified }];
      } else if (listed instanceof Error) {
        throw listed;
      } else list = listed;
      const last = list.at(-1);
      const seq = last ? last.seq + 1 : 0;
      const offset = last ? last.offset + last.size : 0;
      const written = await writeStream(segmentKey(k, seq, offset), chunks, {
        createOnly: true,
        skipEmpty: list.length > 0,
      });
      return offset + written;
    },

    async list(prefix) {
      const p = `${full(prefix)}/`;
      const names = new Set<string>();
      for await (const xml of listPages(p, "/")) {
        for (const { key } of parseContents(xml)) names.add(key.slice(p.length));
        for (const block of xmlBlocks(xml, "CommonPrefixes")) {
          const prefixed = xmlValue(block, "Prefix");
          if (prefixed) names.add(prefixed.slice(p.length).replace(/\/$/, ""));
        }
      }
      return [...names].filter((name) => name !== "" && !name.startsWith("."));
    },

    async move(from, to) {
      const source = full(from);
      const target = full(to);
      const plain = await head(source);
      let list: Segment[] = [];
      if (plain) {
        await copyObject(source, target, plain.size);
      } else {
        list = await segments(source);
        if (list.length === 0) throw new NotFoundError(from);
        const filled = list.filter((s) => s.size > 0);
        if (filled.length === 0) await putObject(target, new Uint8Array());
        else if (filled.length === 1) await copyObject(filled[0].key, target, filled[0].size);
        else await compose(target, filled);
      }
      // The destination is complete (S3 acknowledged it); only now does the source go.
      if (plain) await call({ method: "DELETE", key: source }).then((r) => r.body?.cancel());
      await deleteKeys(plain ? await segmentKeys(source) : list.map((s) => s.key));
    },

    async delete(key) {
      const k = full(key);
      const [response, under] = await Promise.all([
        call({ method: "DELETE", key: k, accept: [404] }),
        keysUnder(`${k}/`),
      ]);
      await response.body?.cancel();
      await deleteKeys(under);
    },
  };
}
