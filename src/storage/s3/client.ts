// Owns the S3 client: SigV4-signed requests (aws4fetch), retries, S3's XML answers and its errors.
// Amazon S3 REST API: HeadObject, PutObject, ListObjectsV2, DeleteObjects, and the error responses.

import { createHash } from "node:crypto";
import { AwsClient } from "aws4fetch";
import { createSocketSender } from "./socket_sender.ts";
import type { FileInfo } from "../driver.ts";

/** Where the bucket is and who signs; the driver's options add its own on top. */
export interface S3ClientOptions {
  /** `http(s)://host[:port]`; for AWS, `https://s3.<region>.amazonaws.com`. */
  endpoint: string;
  bucket: string;
  region: string;
  /** `https://endpoint/bucket/key` (true) or `https://bucket.endpoint/key` (false). */
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
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

/** One object of a listing. */
export interface Listed {
  /** Full S3 key. */
  key: string;
  size: number;
  modified: Date;
}

type Body = Uint8Array | string | undefined;

export interface Call {
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

export interface S3Client {
  readonly bucket: string;
  /** The endpoint's origin, for messages. */
  readonly origin: string;
  /** One signed request, retried on network errors, 5xx and 429 (bodies here are replayable). */
  call(c: Call): Promise<Response>;
  /** A call whose 200 answer may still carry an <Error> body (Copy, CompleteMultipart). */
  callXml(c: Call): Promise<string>;
  /** A presigned GET URL of a full key (SigV4 in the query), valid `expiresIn` seconds. */
  presign(key: string, expiresIn: number): Promise<string>;
  /** The `x-amz-copy-source` of a full key. */
  copySource(key: string): string;
  /** Size and modification time of an object; undefined when it does not exist. */
  head(key: string): Promise<FileInfo | undefined>;
  /** ListObjectsV2 under a full-key prefix, one XML page at a time. */
  listPages(prefix: string, delimiter?: string): AsyncGenerator<string>;
  /** Every key under a full-key prefix (no delimiter), page by page. */
  listAll(prefix: string): AsyncGenerator<Listed[]>;
  /** Every full key under a full-key prefix. */
  keysUnder(prefix: string): Promise<string[]>;
  putObject(key: string, data: Uint8Array, createOnly?: boolean): Promise<void>;
  /** Deletes keys in batches of DeleteObjects; absent keys are not an error. */
  deleteKeys(keys: string[]): Promise<void>;
}

const DELETE_BATCH = 1000;
const RETRIES = 3;
/** One part (at most 5 GiB, usually 16 MiB) must be sent and answered within this. */
export const PART_TIMEOUT = 120_000;
/** Bodies from this size on skip fetch (which copies them) for a plain socket write. */
const RAW_BODY = 64 * 1024;

export function createS3Client(options: S3ClientOptions): S3Client {
  const endpoint = new URL(options.endpoint);
  const bucket = options.bucket;
  const base = options.pathStyle
    ? `${endpoint.origin}/${bucket}`
    : `${endpoint.protocol}//${bucket}.${endpoint.host}`;
  const client = new AwsClient({
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    sessionToken: options.sessionToken,
    service: "s3",
    region: options.region,
    retries: 0,
  });

  const bodies = createSocketSender(endpoint);
  const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/");
  const url = (key: string | undefined, query?: Record<string, string>) => {
    const path = key === undefined ? "/" : `/${encodeKey(key)}`;
    const search = query ? `?${new URLSearchParams(query)}` : "";
    return `${base}${path}${search}`;
  };

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

  async function* listAll(prefix: string): AsyncGenerator<Listed[]> {
    for await (const xml of listPages(prefix)) yield parseContents(xml);
  }

  return {
    bucket,
    origin: endpoint.origin,
    call,
    callXml,
    copySource: (key) => `/${bucket}/${encodeKey(key)}`,
    async presign(key, expiresIn) {
      const request = await client.sign(url(key, { "X-Amz-Expires": String(expiresIn) }), {
        method: "GET",
        aws: { signQuery: true },
      });
      return request.url;
    },
    listPages,
    listAll,

    async head(key) {
      const response = await call({ method: "HEAD", key, accept: [404] });
      await response.body?.cancel();
      if (response.status === 404) return undefined;
      return {
        size: Number(response.headers.get("content-length") ?? 0),
        modified: new Date(response.headers.get("last-modified") ?? 0),
      };
    },

    async keysUnder(prefix) {
      const keys: string[] = [];
      for await (const page of listAll(prefix)) keys.push(...page.map((o) => o.key));
      return keys;
    },

    async putObject(key, data, createOnly = false) {
      const headers: Record<string, string> = { "content-length": String(data.length) };
      if (createOnly) headers["if-none-match"] = "*";
      const response = await call({ method: "PUT", key, headers, body: data });
      await response.body?.cancel();
    },

    async deleteKeys(keys) {
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
    },
  };
}

/** The objects of a ListObjectsV2 page. */
export function parseContents(xml: string): Listed[] {
  return xmlBlocks(xml, "Contents").map((block) => ({
    key: xmlValue(block, "Key") ?? "",
    size: Number(xmlValue(block, "Size") ?? 0),
    modified: new Date(xmlValue(block, "LastModified") ?? 0),
  }));
}

/** The raw inner text of every `<tag>` element (S3's answers have no attributes on them). */
export function xmlBlocks(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]);
}

/** The unescaped text of the first `<tag>` element, or undefined. */
export function xmlValue(xml: string, tag: string): string | undefined {
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

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
