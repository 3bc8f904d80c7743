// Raw HTTP/1.1 for the fuzz test: requests as bytes (so that framing, request lines and headers can
// be as wrong as wanted), one connection per request, written while the answer is read, the
// write side half-closed at the end when asked, and a deadline on the whole exchange.

export interface RawRequest {
  /** Which server it goes to: the open registry, or the one running the token server. */
  target: "open" | "token";
  /** The method as the server will see it (HEAD answers carry no body). */
  method: string;
  /** The bytes sent, exactly. */
  bytes: Uint8Array;
  /**
   * Shut the write side after the bytes (a body shorter than its length is then known to end).
   * Framing cases only: a complete request half-closed can race the server (see fuzz_test.ts).
   */
  halfClose?: boolean;
}

const encoder = new TextEncoder();

export const bytesOf = (text: string): Uint8Array => encoder.encode(text);

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface RequestParts {
  method: string;
  target: string;
  version?: string;
  /** Header lines as sent (`Name: value`, or anything else for malformed lines). */
  headers: string[];
  body?: Uint8Array;
  /** Line ending of the head (bare `\n` is a framing case). */
  eol?: string;
}

/** `METHOD target VERSION`, the header lines and a blank line, then the body. */
export function serialize(p: RequestParts): Uint8Array {
  const eol = p.eol ?? "\r\n";
  const head = `${p.method} ${p.target} ${p.version ?? "HTTP/1.1"}${eol}` +
    p.headers.map((h) => `${h}${eol}`).join("") + eol;
  // latin1 for the head: a code unit > 0x7f becomes one raw byte, as a hostile client sends it.
  const headBytes = Uint8Array.from(head, (c) => c.charCodeAt(0) & 0xff);
  return p.body ? concatBytes(headBytes, p.body) : headBytes;
}

export interface Outcome {
  /** A whole response; the server closed without one; or the deadline passed. */
  kind: "response" | "closed" | "timeout";
  status?: number;
  /** Status line and headers of the (last, final) response. */
  head?: string;
  /** Its body's first bytes, as text. */
  body?: string;
}

/** Sends one request on a fresh connection and reads the answer, within `deadlineMs`. */
export async function exchange(
  port: number,
  req: RawRequest,
  deadlineMs: number,
): Promise<Outcome> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    close();
  }, deadlineMs);
  const writing = (async () => {
    try {
      for (let at = 0; at < req.bytes.length;) at += await conn.write(req.bytes.subarray(at));
      if (req.halfClose) await conn.closeWrite();
    } catch {
      // the server may answer and close before reading everything: what it said is read below
    }
  })();
  let received: Uint8Array = new Uint8Array(0);
  let parsed: Parsed | undefined;
  try {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      received = concatBytes(received, buf.subarray(0, n));
      parsed = parseResponse(received, req.method === "HEAD");
      if (parsed?.complete) break;
    }
  } finally {
    clearTimeout(timer);
    close();
    await writing;
  }
  parsed ??= parseResponse(received, req.method === "HEAD");
  if (parsed?.complete || (parsed && !timedOut)) {
    // A response read to the connection's end counts as whole (no length: body until close).
    return { kind: "response", status: parsed.status, head: parsed.head, body: parsed.body };
  }
  return timedOut ? { kind: "timeout", head: parsed?.head } : { kind: "closed" };
}

interface Parsed {
  status: number;
  head: string;
  body: string;
  complete: boolean;
}

const latin1 = new TextDecoder("latin1");

/** The final response in `data` (1xx interim ones skipped), and whether it is all there. */
function parseResponse(data: Uint8Array, head: boolean): Parsed | undefined {
  let at = 0;
  for (;;) {
    const text = latin1.decode(data.subarray(at, at + 64 * 1024));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const headText = text.slice(0, end);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1]);
    if (!Number.isInteger(status)) return { status: NaN, head: headText, body: "", complete: true };
    const bodyStart = at + end + 4;
    if (status >= 100 && status < 200) {
      at = bodyStart;
      continue;
    }
    const body = data.subarray(bodyStart);
    const header = (name: string) =>
      new RegExp(`^${name}:\\s*(.*)$`, "im").exec(headText)?.[1]?.trim();
    const length = header("content-length");
    const chunked = /chunked/i.test(header("transfer-encoding") ?? "");
    const complete = head || status === 204 || status === 304
      ? true
      : length !== undefined
      ? body.length >= Number(length)
      : chunked
      ? latin1.decode(body.subarray(-7)).endsWith("0\r\n\r\n")
      : false;
    return { status, head: headText, body: latin1.decode(body.subarray(0, 2048)), complete };
  }
}

/** A request as printable text: control bytes escaped, long runs cut. */
export function describeRequest(bytes: Uint8Array, max = 600): string {
  const text = latin1.decode(bytes.subarray(0, max)).replace(
    // deno-lint-ignore no-control-regex -- escaping control bytes is the point
    /[\x00-\x1f\x7f-\xff]/g,
    (c) =>
      c === "\n"
        ? "\\n\n"
        : c === "\r"
        ? "\\r"
        : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  ).replace(/(.)\1{40,}/g, (run, c) => `${c.repeat(8)}…(${run.length}×)`);
  return bytes.length > max ? `${text}… (${bytes.length} bytes)` : text;
}
