// Owns the S3 driver: objects are S3 objects under an optional key prefix, signed with aws4fetch.
// Appends are part objects under `<key>/.a/`; big writes stream into multipart uploads.

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
 */

import { createHash } from "node:crypto";
import { AwsClient } from "aws4fetch";
import { createRawSender } from "./http_put.ts";
import {
  type ByteRange,
  checkKey,
  type FileInfo,
  NotFoundError,
  type StorageDriver,
} from "./driver.ts";

export interface S3Options {
  /** `http(s)://host[:port]`; for AWS, `https://s3.<region>.amazonaws.com`. */
  endpoint: string;
  bucket: string;
  region: string;
  /** Key prefix inside the bucket (no leading or trailing `/` needed). */
  prefix?: string;
  /** `https://endpoint/bucket/key` (true) or `https://bucket.endpoint/key` (false). */
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Multipart part size in bytes (5 MiB – 5 GiB; default 16 MiB). */
  partSize?: number;
  /** Parts of one write uploading at once (default 2). */
  partsInFlight?: number;
  /** Part buffers the driver may hold at once, across all writes (default 8). */
  maxBuffers?: number;
}

export interface S3Driver extends StorageDriver {
  readonly kind: "s3";
  readonly checksummed: true;
  /** Lists one key of the bucket: resolves when it is reachable with these credentials. */
  ready(): Promise<void>;
}

/** An S3 request that failed; `code` is S3's error code when the body had one. */
export class S3Error extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = "S3Error";
  }
}

const MiB = 1024 * 1024;
const MIN_PART = 5 * MiB;
const MAX_COPY = 5 * 1024 * MiB;
/** UploadPartCopy ranges: big enough to be few, well under the 5 GiB copy limit. */
const COPY_PART = 1024 * MiB;
const SEGMENTS = ".a";
const DELETE_BATCH = 1000;
const RETRIES = 3;
/** One part (at most 5 GiB, usually 16 MiB) must be sent and answered within this. */
const PART_TIMEOUT = 120_000;
/** Bodies from this size on skip fetch (which copies them) for a plain socket write. */
const RAW_BODY = 64 * 1024;

interface Segment {
  /** Full S3 key. */
  key: string;
  seq: number;
  offset: number;
  size: number;
  modified: Date;
}

interface Listed {
  key: string;
  size: number;
  modified: Date;
}

type Body = Uint8Array | string | undefined;

interface Call {
  method: string;
  /** Full S3 key; undefined for the bucket itself. */
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Body;
  /** Statuses that are answers rather than errors (404 for lookups). */
  accept?: number[];
  timeoutMs?: number;
}

export function createS3Driver(options: S3Options): S3Driver {
  const endpoint = new URL(options.endpoint);
  const bucket = options.bucket;
  const base = options.pathStyle
    ? `${endpoint.origin}/${bucket}`
    : `${endpoint.protocol}//${bucket}.${endpoint.host}`;
  const root = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
  const full = (key: string) => (root ? `${root}/${checkKey(key)}` : checkKey(key));
  const partSize = options.partSize ?? 16 * MiB;
  if (partSize < MIN_PART || partSize > MAX_COPY) throw new Error("partSize must be 5 MiB–5 GiB");
  const partsInFlight = Math.max(1, options.partsInFlight ?? 2);
  const buffers = createBufferPool(partSize, Math.max(partsInFlight + 1, options.maxBuffers ?? 8));
  const client = new AwsClient({
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    sessionToken: options.sessionToken,
    service: "s3",
    region: options.region,
    retries: 0,
  });

  const bodies = createRawSender(endpoint);
  const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/");
  /** The `x-amz-copy-source` of a full key. */
  const copySource = (key: string) => `/${bucket}/${encodeKey(key)}`;
  const url = (key: string | undefined, query?: Record<string, string>) => {
    const path = key === undefined ? "/" : `/${encodeKey(key)}`;
    const search = query ? `?${new URLSearchParams(query)}` : "";
    return `${base}${path}${search}`;
  };

  /** One signed request, retried on network errors, 5xx and 429 (bodies here are replayable). */
  async function call(c: Call): Promise<Response> {
    let lastError: unknown;
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      if (attempt > 0) await sleep(50 * 4 ** attempt * Math.random());
      let response: Response;
      try {
        if (c.body instanceof Uint8Array && c.body.length >= RAW_BODY) {
          // Signed without the body (UNSIGNED-PAYLOAD), written from the caller's buffer.
          const signed = await client.sign(url(c.key, c.query), {
            method: c.method,
            headers: c.headers,
          });
          const target = new URL(signed.url);
          const raw = await bodies.send(
            c.method,
            `${target.pathname}${target.search}`,
            signed.headers,
            c.body,
            c.timeoutMs || PART_TIMEOUT,
          );
          response = new Response(raw.body.length > 0 ? raw.body as BodyInit : null, {
            status: raw.status,
            headers: raw.headers,
          });
        } else {
          const request = await client.sign(url(c.key, c.query), {
            method: c.method,
            headers: c.headers,
            body: c.body as BodyInit | undefined,
          });
          response = await fetch(request, {
            signal: c.timeoutMs === 0 ? undefined : AbortSignal.timeout(c.timeoutMs ?? 60_000),
          });
        }
      } catch (error) {
        lastError = error;
        continue;
      }
      if (response.ok || c.accept?.includes(response.status)) return response;
      const error = await s3Error(c, response);
      if (response.status < 500 && response.status !== 429) throw error;
      lastError = error;
    }
    throw lastError instanceof S3Error ? lastError : new S3Error(
      `s3 ${c.method} ${c.key ?? bucket}: ${(lastError as Error)?.message ?? lastError}`,
      0,
      "NetworkError",
    );
  }

  async function s3Error(c: Call, response: Response): Promise<S3Error> {
    const text = await response.text().catch(() => "");
    const code = xmlValue(text, "Code") ?? response.statusText;
    const message = xmlValue(text, "Message");
    return new S3Error(
      `s3 ${c.method} ${c.key ?? bucket}: ${response.status} ${code}${
        message ? `: ${message}` : ""
      }`,
      response.status,
      code,
    );
  }

  /** Calls that answer 200 and still failed carry an <Error> body (Copy, CompleteMultipart). */
  async function callXml(c: Call): Promise<string> {
    const response = await call(c);
    const text = await response.text();
    if (/<Error>/.test(text)) {
      throw new S3Error(
        `s3 ${c.method} ${c.key}: ${xmlValue(text, "Code")}: ${xmlValue(text, "Message")}`,
        500,
        xmlValue(text, "Code") ?? "InternalError",
      );
    }
    return text;
  }

  async function head(key: string): Promise<FileInfo | undefined> {
    const response = await call({ method: "HEAD", key, accept: [404] });
    await response.body?.cancel();
    if (response.status === 404) return undefined;
    return {
      size: Number(response.headers.get("content-length") ?? 0),
      modified: new Date(response.headers.get("last-modified") ?? 0),
    };
  }

  /** ListObjectsV2 under a full-key prefix, one XML page at a time. */
  async function* listPages(prefix: string, delimiter?: string): AsyncGenerator<string> {
    let token: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const query: Record<string, string> = { "list-type": "2", prefix };
      if (delimiter) query.delimiter = delimiter;
      if (token) query["continuation-token"] = token;
      const xml = await (await call({ method: "GET", query })).text();
      yield xml;
      token = xmlValue(xml, "NextContinuationToken");
      if (xmlValue(xml, "IsTruncated") !== "true" || !token) return;
    }
  }

  /** Every key under a full-key prefix (no delimiter), page by page. */
  async function* listAll(prefix: string): AsyncGenerator<Listed[]> {
    for await (const xml of listPages(prefix)) yield parseContents(xml);
  }

  /** Every full key under a full-key prefix. */
  async function keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of listAll(prefix)) keys.push(...page.map((o) => o.key));
    return keys;
  }

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

  async function putObject(key: string, data: Uint8Array, createOnly = false): Promise<void> {
    const headers: Record<string, string> = { "content-length": String(data.length) };
    if (createOnly) headers["if-none-match"] = "*";
    const response = await call({ method: "PUT", key, headers, body: data });
    await response.body?.cancel();
  }

  async function deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const body = `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${
        batch.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join("")
      }</Delete>`;
      const md5 = createHash("md5").update(body).digest("base64");
      // Quiet mode lists only failures: any <Error> entry fails the call.
      await callXml({
        method: "POST",
        query: { delete: "" },
        headers: { "content-md5": md5, "content-type": "application/xml" },
        body,
      });
    }
  }

  /**
   * Streams a source into one object: a single PUT when it fits in one part, else a multipart
   * upload. Resolves to the bytes written; when the source fails, what it gave so far is still
   * written before the failure is rethrown, unless `atomic` (then nothing is written).
   */
  async function writeStream(
    key: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { createOnly: boolean; skipEmpty: boolean; atomic?: boolean },
  ): Promise<number> {
    let buffer: Uint8Array | undefined = await buffers.acquire();
    let filled = 0;
    let partNumber = 0;
    let written = 0;
    let sourceError: unknown;
    let failed: unknown;
    let uploadId: string | undefined;
    const parts: string[] = [];
    const inFlight = new Set<Promise<void>>();

    const sendPart = (data: Uint8Array, number: number, done: () => void) => {
      const work = (async () => {
        try {
          const response = await call({
            method: "PUT",
            key,
            query: { partNumber: String(number), uploadId: uploadId! },
            headers: { "content-length": String(data.length) },
            body: data,
            timeoutMs: PART_TIMEOUT,
          });
          await response.body?.cancel();
          parts[number - 1] = response.headers.get("etag") ?? "";
        } catch (error) {
          failed ??= error;
        } finally {
          done();
        }
      })();
      inFlight.add(work);
      work.then(() => inFlight.delete(work));
    };

    const flushFull = async () => {
      uploadId ??= await createMultipart(key);
      const full = buffer!;
      sendPart(full, ++partNumber, () => buffers.release(full));
      written += filled;
      while (inFlight.size >= partsInFlight) await Promise.race(inFlight);
      if (failed) throw failed;
      buffer = await buffers.acquire();
      filled = 0;
    };

    try {
      try {
        for await (const chunk of source) {
          let at = 0;
          while (at < chunk.length) {
            const n = Math.min(chunk.length - at, partSize - filled);
            buffer!.set(chunk.subarray(at, at + n), filled);
            filled += n;
            at += n;
            if (filled === partSize) await flushFull();
          }
        }
      } catch (error) {
        if (failed || options.atomic) throw error; // storage broke, or nothing may be kept
        sourceError = error;
      }
      if (uploadId === undefined) {
        if (!(filled === 0 && (options.skipEmpty || sourceError))) {
          await putObject(key, buffer!.subarray(0, filled), options.createOnly);
        }
      } else {
        const last = buffer!;
        buffer = undefined;
        if (filled > 0) {
          sendPart(last.subarray(0, filled), ++partNumber, () => buffers.release(last));
        } else buffers.release(last);
        await Promise.all(inFlight);
        if (failed) throw failed;
        await completeMultipart(key, uploadId, parts);
      }
      written += filled;
    } catch (error) {
      if (uploadId !== undefined) {
        await Promise.allSettled(inFlight);
        await abortMultipart(key, uploadId);
      }
      throw error;
    } finally {
      if (buffer) buffers.release(buffer);
    }
    if (sourceError !== undefined) throw sourceError;
    return written;
  }

  async function createMultipart(key: string): Promise<string> {
    const xml = await callXml({ method: "POST", key, query: { uploads: "" } });
    const id = xmlValue(xml, "UploadId");
    if (!id) throw new S3Error(`s3 create multipart ${key}: no UploadId`, 500, "InternalError");
    return id;
  }

  async function completeMultipart(key: string, uploadId: string, etags: string[]) {
    const body = `<CompleteMultipartUpload>${
      etags.map((etag, i) =>
        `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`
      ).join("")
    }</CompleteMultipartUpload>`;
    await callXml({
      method: "POST",
      key,
      query: { uploadId },
      headers: { "content-type": "application/xml" },
      body,
      timeoutMs: 600_000,
    });
  }

  async function abortMultipart(key: string, uploadId: string): Promise<void> {
    await call({ method: "DELETE", key, query: { uploadId }, accept: [404] })
      .then((r) => r.body?.cancel())
      .catch(() => {}); // a left-over upload is only space; a bucket lifecycle rule reaps it
  }

  /** Server-side copy of a whole object (CopyObject, or UploadPartCopy past 5 GiB). */
  async function copyObject(from: string, to: string, size: number): Promise<void> {
    const source = copySource(from);
    if (size <= MAX_COPY) {
      await callXml({
        method: "PUT",
        key: to,
        headers: { "x-amz-copy-source": source },
        timeoutMs: 600_000,
      });
      return;
    }
    await compose(to, [{ key: from, size }]);
  }

  /**
   * Assembles objects into one with a multipart upload: ranges of at least 5 MiB are copied
   * server-side (UploadPartCopy); smaller runs are read and re-uploaded as one part.
   */
  async function compose(to: string, sources: { key: string; size: number }[]): Promise<void> {
    const uploadId = await createMultipart(to);
    const etags: string[] = [];
    let carry: Uint8Array | undefined;
    let carried = 0;
    try {
      const uploadCarry = async () => {
        const response = await call({
          method: "PUT",
          key: to,
          query: { partNumber: String(etags.length + 1), uploadId },
          headers: { "content-length": String(carried) },
          body: carry!.subarray(0, carried),
          timeoutMs: PART_TIMEOUT,
        });
        await response.body?.cancel();
        etags.push(response.headers.get("etag") ?? "");
        carried = 0;
      };
      const copyRange = async (key: string, start: number, end: number) => {
        const source = copySource(key);
        const xml = await callXml({
          method: "PUT",
          key: to,
          query: { partNumber: String(etags.length + 1), uploadId },
          headers: {
            "x-amz-copy-source": source,
            "x-amz-copy-source-range": `bytes=${start}-${end - 1}`,
          },
          timeoutMs: 600_000,
        });
        etags.push(xmlValue(xml, "ETag") ?? "");
      };
      for (const { key, size } of sources) {
        let at = 0;
        while (at < size) {
          if (carried === 0 && size - at >= MIN_PART) {
            // Equal ranges of at most COPY_PART bytes; each stays above the minimum.
            const count = Math.ceil((size - at) / COPY_PART);
            const step = Math.ceil((size - at) / count);
            for (let start = at; start < size; start += step) {
              await copyRange(key, start, Math.min(size, start + step));
            }
            at = size;
            continue;
          }
          carry ??= await buffers.acquire();
          const end = Math.min(size, at + carry.length - carried);
          const response = await call({
            method: "GET",
            key,
            headers: { range: `bytes=${at}-${end - 1}` },
            timeoutMs: 600_000,
          });
          for await (const chunk of response.body!) {
            carry.set(chunk, carried);
            carried += chunk.length;
          }
          at = end;
          if (carried === carry.length) await uploadCarry();
        }
        if (carried >= MIN_PART) await uploadCarry();
      }
      if (carried > 0 || etags.length === 0) await uploadCarry();
      await completeMultipart(to, uploadId, etags);
    } catch (error) {
      await abortMultipart(to, uploadId);
      throw error;
    } finally {
      if (carry) buffers.release(carry);
    }
  }

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
          `cannot use S3 bucket ${bucket} at ${endpoint.origin}: ${reason}`.split("\n")[0],
          status,
          code,
        );
      }
    },

    stat: (key) => statOf(key),

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

/** Part buffers, reused: fresh memory costs a page fault per 4 KiB on these machines. */
function createBufferPool(size: number, max: number) {
  const free: Uint8Array[] = [];
  const waiting: ((buffer: Uint8Array) => void)[] = [];
  let made = 0;
  return {
    acquire(): Promise<Uint8Array> {
      const buffer = free.pop();
      if (buffer) return Promise.resolve(buffer);
      if (made < max) {
        made++;
        return Promise.resolve(new Uint8Array(size));
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    release(buffer: Uint8Array): void {
      const next = waiting.shift();
      if (next) next(buffer);
      else free.push(buffer);
    },
  };
}

function parseContents(xml: string): Listed[] {
  return xmlBlocks(xml, "Contents").map((block) => ({
    key: xmlValue(block, "Key") ?? "",
    size: Number(xmlValue(block, "Size") ?? 0),
    modified: new Date(xmlValue(block, "LastModified") ?? 0),
  }));
}

function xmlBlocks(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]);
}

function xmlValue(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return match ? unescapeXml(match[1]) : undefined;
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-f]+);/gi, (_, entity: string) => {
    switch (entity.toLowerCase()) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      case "amp":
        return "&";
      default:
        return String.fromCodePoint(
          entity[1].toLowerCase() === "x"
            ? parseInt(entity.slice(2), 16)
            : parseInt(entity.slice(1), 10),
        );
    }
  });
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
