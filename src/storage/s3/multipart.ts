// Owns streamed writes into S3 objects: reused part buffers, multipart uploads, server-side copies.
// Amazon S3 API: CreateMultipartUpload, UploadPart(Copy), Complete/AbortMultipartUpload, CopyObject.

import { escapeXml, PART_TIMEOUT, type S3Client, S3Error, xmlValue } from "./client.ts";

export interface MultipartOptions {
  /** Multipart part size in bytes (5 MiB – 5 GiB; default 16 MiB). */
  partSize?: number;
  /** Parts of one write uploading at once (default 2). */
  partsInFlight?: number;
  /** Part buffers the writer may hold at once, across all writes (default 8). */
  maxBuffers?: number;
}

export interface StreamWriteOptions {
  /** `If-None-Match: *` on a single PUT, so an existing object is never replaced. */
  createOnly: boolean;
  /** An empty source writes no object at all. */
  skipEmpty: boolean;
  /** When the source fails, nothing is written (else what it gave so far is). */
  atomic?: boolean;
}

export interface MultipartWriter {
  /**
   * Streams a source into one object: a single PUT when it fits in one part, else a multipart
   * upload. Resolves to the bytes written; when the source fails, what it gave so far is still
   * written before the failure is rethrown, unless `atomic` (then nothing is written).
   */
  writeStream(
    key: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: StreamWriteOptions,
  ): Promise<number>;
  /** Server-side copy of a whole object (CopyObject, or UploadPartCopy past 5 GiB). */
  copyObject(from: string, to: string, size: number): Promise<void>;
  /**
   * Assembles objects into one with a multipart upload: ranges of at least 5 MiB are copied
   * server-side (UploadPartCopy); smaller runs are read and re-uploaded as one part.
   */
  compose(to: string, sources: { key: string; size: number }[]): Promise<void>;
}

const MiB = 1024 * 1024;
const MIN_PART = 5 * MiB;
const MAX_COPY = 5 * 1024 * MiB;
/** UploadPartCopy ranges: big enough to be few, well under the 5 GiB copy limit. */
const COPY_PART = 1024 * MiB;

export function createMultipartWriter(
  s3: S3Client,
  options: MultipartOptions = {},
): MultipartWriter {
  const partSize = options.partSize ?? 16 * MiB;
  if (partSize < MIN_PART || partSize > MAX_COPY) throw new Error("partSize must be 5 MiB–5 GiB");
  const partsInFlight = Math.max(1, options.partsInFlight ?? 2);
  const buffers = createBufferPool(partSize, Math.max(partsInFlight + 1, options.maxBuffers ?? 8));

  async function writeStream(
    key: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: StreamWriteOptions,
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
          const response = await s3.call({
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
          await s3.putObject(key, buffer!.subarray(0, filled), options.createOnly);
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
    const xml = await s3.callXml({ method: "POST", key, query: { uploads: "" } });
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
    await s3.callXml({
      method: "POST",
      key,
      query: { uploadId },
      headers: { "content-type": "application/xml" },
      body,
      timeoutMs: 600_000,
    });
  }

  async function abortMultipart(key: string, uploadId: string): Promise<void> {
    await s3.call({ method: "DELETE", key, query: { uploadId }, accept: [404] })
      .then((r) => r.body?.cancel())
      .catch(() => {}); // a left-over upload is only space; a bucket lifecycle rule reaps it
  }

  async function copyObject(from: string, to: string, size: number): Promise<void> {
    const source = s3.copySource(from);
    if (size <= MAX_COPY) {
      await s3.callXml({
        method: "PUT",
        key: to,
        headers: { "x-amz-copy-source": source },
        timeoutMs: 600_000,
      });
      return;
    }
    await compose(to, [{ key: from, size }]);
  }

  async function compose(to: string, sources: { key: string; size: number }[]): Promise<void> {
    const uploadId = await createMultipart(to);
    const etags: string[] = [];
    let carry: Uint8Array | undefined;
    let carried = 0;
    try {
      const uploadCarry = async () => {
        const response = await s3.call({
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
        const source = s3.copySource(key);
        const xml = await s3.callXml({
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
          const response = await s3.call({
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

  return { writeStream, copyObject, compose };
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
