// Owns the S3 client's big-body requests: HTTP/1.1 (RFC 9112) written from the caller's buffer
// straight to a kept-alive socket: fetch() would copy each body (a fresh 16 MiB per part).

import { concat } from "../../bytes.ts";

/** A finished response, its (small) body read whole. */
export interface SocketResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

export interface SocketSender {
  /** Sends one request with a known-length body on a kept-alive connection to `origin`. */
  send(
    method: string,
    target: string,
    headers: Headers,
    body: Uint8Array,
    timeoutMs: number,
  ): Promise<SocketResponse>;
  close(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");
const MAX_HEAD = 64 * 1024;
const MAX_BODY = 1024 * 1024; // S3 answers to PUTs are empty or a small XML error
const MAX_IDLE = 8;

type Conn = Deno.TcpConn | Deno.TlsConn;

/** A connection with the bytes read past the last response. */
interface Link {
  conn: Conn;
  buffer: Uint8Array;
  start: number;
  end: number;
}

export function createSocketSender(origin: URL): SocketSender {
  const tls = origin.protocol === "https:";
  const hostname = origin.hostname.replace(/^\[|\]$/g, "");
  const port = Number(origin.port || (tls ? 443 : 80));
  const idle: Link[] = [];

  async function connect(): Promise<Link> {
    const conn = tls
      ? await Deno.connectTls({ hostname, port })
      : await Deno.connect({ hostname, port, transport: "tcp" });
    if ("setNoDelay" in conn) conn.setNoDelay(true);
    return { conn, buffer: new Uint8Array(16 * 1024), start: 0, end: 0 };
  }

  async function exchange(
    link: Link,
    method: string,
    target: string,
    headers: Headers,
    body: Uint8Array,
  ): Promise<{ response: SocketResponse; reusable: boolean }> {
    let head = `${method} ${target} HTTP/1.1\r\nhost: ${origin.host}\r\n`;
    headers.forEach((value, key) => {
      if (key !== "host" && key !== "content-length") head += `${key}: ${value}\r\n`;
    });
    head += `content-length: ${body.length}\r\n\r\n`;
    await writeAll(link.conn, encoder.encode(head));
    await writeAll(link.conn, body);

    // Status line and headers.
    let headEnd = -1;
    for (let reads = 0; headEnd < 0; reads++) {
      headEnd = indexOfCrlfCrlf(link.buffer, link.start, link.end);
      if (headEnd >= 0) break;
      if (link.end - link.start >= MAX_HEAD || reads > 10_000) {
        throw new Error("response head too big");
      }
      await fill(link);
    }
    const lines = decoder.decode(link.buffer.subarray(link.start, headEnd)).split("\r\n");
    link.start = headEnd + 4;
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1]);
    if (!status) throw new Error(`malformed response: ${lines[0]}`);
    const responseHeaders = new Headers();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        responseHeaders.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
    }
    // Body: by length, chunked, or (HEAD-like 1xx/204/304) none.
    let bodyBytes: Uint8Array;
    const chunked = /chunked/i.test(responseHeaders.get("transfer-encoding") ?? "");
    if (chunked) {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < 100_000; i++) {
        const line = await readLine(link);
        const size = parseInt(line.split(";")[0], 16);
        if (!Number.isFinite(size)) throw new Error("malformed chunk size");
        if (size === 0) {
          while ((await readLine(link)) !== "") { /* trailers */ }
          break;
        }
        total += size;
        if (total > MAX_BODY) throw new Error("response body too big");
        parts.push(await readExactly(link, size));
        await readLine(link);
      }
      bodyBytes = concat(parts, total);
    } else {
      const length = status === 204 || status === 304 || status < 200
        ? 0
        : Number(responseHeaders.get("content-length") ?? "0");
      if (!(length <= MAX_BODY)) throw new Error("response body too big");
      bodyBytes = await readExactly(link, length);
    }
    const reusable = !/close/i.test(responseHeaders.get("connection") ?? "");
    return { response: { status, headers: responseHeaders, body: bodyBytes }, reusable };
  }

  return {
    async send(method, target, headers, body, timeoutMs) {
      // A kept-alive connection may have been closed by the server: retry once on a fresh one.
      for (let attempt = 0; attempt < 2; attempt++) {
        const reused = attempt === 0 ? idle.pop() : undefined; // the retry: always fresh
        const link = reused ?? await connect();
        const timer = setTimeout(() => link.conn.close(), timeoutMs);
        try {
          const { response, reusable } = await exchange(link, method, target, headers, body);
          clearTimeout(timer);
          if (reusable && link.start === link.end && idle.length < MAX_IDLE) {
            link.start = link.end = 0;
            idle.push(link);
          } else link.conn.close();
          return response;
        } catch (error) {
          clearTimeout(timer);
          try {
            link.conn.close();
          } catch { /* closed by the timer */ }
          if (!reused) throw error;
        }
      }
      throw new Error("unreachable");
    },
    close() {
      for (const link of idle.splice(0)) link.conn.close();
    },
  };
}

async function writeAll(conn: Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) written += await conn.write(data.subarray(written));
}

/** Reads more bytes into the link's buffer (compacting or growing it); throws at end of stream. */
async function fill(link: Link): Promise<void> {
  if (link.start > 0) {
    link.buffer.copyWithin(0, link.start, link.end);
    link.end -= link.start;
    link.start = 0;
  }
  if (link.end === link.buffer.length) {
    const bigger = new Uint8Array(link.buffer.length * 2);
    bigger.set(link.buffer);
    link.buffer = bigger;
  }
  const n = await link.conn.read(link.buffer.subarray(link.end));
  if (n === null) throw new Error("connection closed by the server");
  link.end += n;
}

function indexOfCrlfCrlf(buffer: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

async function readLine(link: Link): Promise<string> {
  for (let reads = 0; reads < 10_000; reads++) {
    for (let i = link.start; i + 1 < link.end; i++) {
      if (link.buffer[i] === 13 && link.buffer[i + 1] === 10) {
        const line = decoder.decode(link.buffer.subarray(link.start, i));
        link.start = i + 2;
        return line;
      }
    }
    if (link.end - link.start >= MAX_HEAD) throw new Error("response line too long");
    await fill(link);
  }
  throw new Error("response line never ended");
}

async function readExactly(link: Link, length: number): Promise<Uint8Array> {
  for (let reads = 0; link.end - link.start < length; reads++) {
    if (reads > 100_000) throw new Error("response body never ended");
    await fill(link);
  }
  const out = link.buffer.slice(link.start, link.start + length);
  link.start += length;
  return out;
}
