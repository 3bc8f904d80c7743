// A minimal, fast HTTP/1.1 client over a raw socket (Deno.connect).
//
// Request bodies are written from views of ONE reused, pre-filled pattern
// buffer (no fresh memory per request, no copies in JS); response bodies are
// either collected (small responses) or read into a reused sink buffer and
// only counted (blob pulls). Keep-alive connections are reused.

const CRLF_CRLF = [13, 10, 13, 10];
const CRLF = new Uint8Array([13, 10]);
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** A body made of `pattern` repeated endlessly, starting at `offset`. */
export interface PatternBody {
  pattern: Uint8Array;
  offset: number;
  length: number;
}

export type Body = Uint8Array | PatternBody;

export interface Response {
  status: number;
  headers: Map<string, string>;
  /** Collected body (only when collected; otherwise empty). */
  body: Uint8Array;
  /** Number of body bytes received. */
  bodyBytes: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Body;
  /** Read the body into this reused buffer and only count it. */
  sink?: Uint8Array;
  /** Called with each received body slice (only with sink). */
  onData?: (chunk: Uint8Array) => void;
  /** Collect at most this many body bytes (default 1 MiB). */
  maxCollect?: number;
  /**
   * Send a pattern body as `Transfer-Encoding: chunked` in frames of this many bytes, each its
   * size line, its bytes and CRLF written in turn (docker's streamed layer upload).
   */
  frames?: number;
}

function bodyLength(b: Body | undefined): number {
  if (b === undefined) return 0;
  return b instanceof Uint8Array ? b.length : b.length;
}

/** Yields the views of a pattern body, each at most `max` bytes. */
export function* patternSlices(
  b: PatternBody,
  max = 8 << 20,
): Generator<Uint8Array> {
  const p = b.pattern;
  let pos = b.offset % p.length;
  let left = b.length;
  while (left > 0) {
    const n = Math.min(left, p.length - pos, max);
    yield p.subarray(pos, pos + n);
    left -= n;
    pos = (pos + n) % p.length;
  }
}

export class HttpError extends Error {}

/** One keep-alive HTTP/1.1 connection. */
export class HttpConn {
  #conn: Deno.TcpConn | null = null;
  #buf = new Uint8Array(256 * 1024);
  #start = 0;
  #end = 0;
  readonly host: string;
  readonly port: number;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  async #connect(): Promise<Deno.TcpConn> {
    if (this.#conn) return this.#conn;
    const c = await Deno.connect({
      hostname: this.host,
      port: this.port,
      transport: "tcp",
    });
    c.setNoDelay(true);
    this.#conn = c;
    this.#start = this.#end = 0;
    return c;
  }

  close(): void {
    if (this.#conn) {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
      this.#conn = null;
    }
  }

  async #writeAll(c: Deno.TcpConn, data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      off += await c.write(off === 0 ? data : data.subarray(off));
    }
  }

  /** Reads more bytes into the small buffer; false on EOF. */
  async #fill(c: Deno.TcpConn): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        const nb = new Uint8Array(this.#buf.length * 2);
        nb.set(this.#buf);
        this.#buf = nb;
      }
    }
    const n = await c.read(this.#buf.subarray(this.#end));
    if (n === null || n === 0) return false;
    this.#end += n;
    return true;
  }

  #findHeadEnd(): number {
    const b = this.#buf;
    for (let i = this.#start; i + 3 < this.#end; i++) {
      if (
        b[i] === CRLF_CRLF[0] && b[i + 1] === CRLF_CRLF[1] &&
        b[i + 2] === CRLF_CRLF[2] && b[i + 3] === CRLF_CRLF[3]
      ) return i;
    }
    return -1;
  }

  async #readLine(c: Deno.TcpConn): Promise<string> {
    for (let guard = 0; guard < 1_000_000; guard++) {
      for (let i = this.#start; i + 1 < this.#end; i++) {
        if (this.#buf[i] === 13 && this.#buf[i + 1] === 10) {
          const s = latin1.decode(this.#buf.subarray(this.#start, i));
          this.#start = i + 2;
          return s;
        }
      }
      if (!await this.#fill(c)) throw new HttpError("EOF in chunked body");
    }
    throw new HttpError("line too long");
  }

  /** Reads exactly n body bytes, either collecting or sinking them. */
  async #readBody(
    c: Deno.TcpConn,
    n: number,
    opts: RequestOptions,
    out: Uint8Array[],
  ): Promise<void> {
    let left = n;
    const maxCollect = opts.maxCollect ?? (1 << 20);
    let collected = out.reduce((a, b) => a + b.length, 0);
    const take = (chunk: Uint8Array) => {
      if (opts.sink) {
        opts.onData?.(chunk);
      } else if (collected < maxCollect) {
        const part = chunk.subarray(0, maxCollect - collected);
        out.push(part.slice());
        collected += part.length;
      }
    };
    // Buffered bytes first.
    const have = Math.min(left, this.#end - this.#start);
    if (have > 0) {
      take(this.#buf.subarray(this.#start, this.#start + have));
      this.#start += have;
      left -= have;
    }
    const sink = opts.sink;
    for (let guard = 0; left > 0 && guard < 1e9; guard++) {
      if (sink && left >= 65536) {
        const r = await c.read(sink.subarray(0, Math.min(left, sink.length)));
        if (r === null || r === 0) throw new HttpError("EOF in body");
        take(sink.subarray(0, r));
        left -= r;
      } else {
        if (!await this.#fill(c)) throw new HttpError("EOF in body");
        const h = Math.min(left, this.#end - this.#start);
        take(this.#buf.subarray(this.#start, this.#start + h));
        this.#start += h;
        left -= h;
      }
    }
  }

  /** Sends one request and reads its response. */
  async request(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<Response> {
    const c = await this.#connect();
    try {
      return await this.#request(c, method, path, opts);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  async #request(
    c: Deno.TcpConn,
    method: string,
    path: string,
    opts: RequestOptions,
  ): Promise<Response> {
    const len = bodyLength(opts.body);
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n`;
    const hdrs = opts.headers ?? {};
    for (const [k, v] of Object.entries(hdrs)) head += `${k}: ${v}\r\n`;
    if (opts.frames) head += "Transfer-Encoding: chunked\r\n";
    else if (
      opts.body !== undefined || method === "PUT" || method === "POST" ||
      method === "PATCH"
    ) {
      head += `Content-Length: ${len}\r\n`;
    }
    head += "\r\n";
    const headBytes = enc.encode(head);
    const b = opts.body;
    if (opts.frames && b && !(b instanceof Uint8Array)) {
      await this.#writeAll(c, headBytes);
      for (const frame of patternSlices(b, opts.frames)) {
        await this.#writeAll(c, enc.encode(`${frame.length.toString(16)}\r\n`));
        await this.#writeAll(c, frame);
        await this.#writeAll(c, CRLF);
      }
      await this.#writeAll(c, enc.encode("0\r\n\r\n"));
    } else if (b instanceof Uint8Array && b.length <= 64 * 1024) {
      const all = new Uint8Array(headBytes.length + b.length);
      all.set(headBytes);
      all.set(b, headBytes.length);
      await this.#writeAll(c, all);
    } else {
      await this.#writeAll(c, headBytes);
      if (b instanceof Uint8Array) await this.#writeAll(c, b);
      else if (b) { for (const s of patternSlices(b)) await this.#writeAll(c, s); }
    }

    // Response head (skipping 1xx interim responses).
    let status = 0;
    let headers = new Map<string, string>();
    for (let interim = 0; interim < 10; interim++) {
      let end = this.#findHeadEnd();
      for (let guard = 0; end < 0 && guard < 100000; guard++) {
        if (!await this.#fill(c)) {
          throw new HttpError("connection closed before response head");
        }
        end = this.#findHeadEnd();
      }
      if (end < 0) throw new HttpError("response head too large");
      const text = latin1.decode(this.#buf.subarray(this.#start, end));
      this.#start = end + 4;
      const lines = text.split("\r\n");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      if (!m) throw new HttpError(`bad status line: ${lines[0]}`);
      status = Number(m[1]);
      headers = new Map();
      for (let i = 1; i < lines.length; i++) {
        const k = lines[i].indexOf(":");
        if (k > 0) {
          const name = lines[i].slice(0, k).trim().toLowerCase();
          const val = lines[i].slice(k + 1).trim();
          const prev = headers.get(name);
          headers.set(name, prev === undefined ? val : `${prev}, ${val}`);
        }
      }
      if (status >= 200 || status === 101) break;
    }

    const out: Uint8Array[] = [];
    let bodyBytes = 0;
    const noBody = method === "HEAD" || status === 204 || status === 304;
    const te = headers.get("transfer-encoding")?.toLowerCase() ?? "";
    const cl = headers.get("content-length");
    let mustClose = (headers.get("connection") ?? "").toLowerCase() ===
      "close";
    if (!noBody) {
      if (te.includes("chunked")) {
        for (let guard = 0; guard < 1e8; guard++) {
          const line = await this.#readLine(c);
          const size = parseInt(line.split(";")[0].trim(), 16);
          if (!Number.isFinite(size)) throw new HttpError("bad chunk size");
          if (size === 0) {
            // trailers
            for (let g = 0; g < 1000; g++) {
              if ((await this.#readLine(c)) === "") break;
            }
            break;
          }
          await this.#readBody(c, size, opts, out);
          bodyBytes += size;
          if ((await this.#readLine(c)) !== "") {
            throw new HttpError("bad chunk end");
          }
        }
      } else if (cl !== undefined) {
        const n = Number(cl);
        await this.#readBody(c, n, opts, out);
        bodyBytes = n;
      } else {
        // Read until EOF.
        for (let guard = 0; guard < 1e9; guard++) {
          const h = this.#end - this.#start;
          if (h > 0) {
            await this.#readBody(c, h, opts, out);
            bodyBytes += h;
          }
          if (!await this.#fill(c)) break;
        }
        mustClose = true;
      }
    }
    if (mustClose) this.close();
    let body: Uint8Array;
    if (out.length === 1) body = out[0];
    else {
      body = new Uint8Array(out.reduce((a, x) => a + x.length, 0));
      let o = 0;
      for (const x of out) {
        body.set(x, o);
        o += x.length;
      }
    }
    return { status, headers, body, bodyBytes };
  }
}

/** Turns a Location header into a request target (path + query). */
export function locationPath(loc: string): string {
  if (loc.startsWith("/")) return loc;
  const u = new URL(loc);
  if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost") {
    throw new HttpError(`refusing non-loopback location ${loc}`);
  }
  return u.pathname + u.search;
}

export function withQuery(path: string, key: string, value: string): string {
  return `${path}${path.includes("?") ? "&" : "?"}${key}=${encodeURIComponent(value)}`;
}
