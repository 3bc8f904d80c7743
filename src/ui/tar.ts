// Owns reading tar archives as a stream of entries: headers parsed, file contents skipped, never held.
// Implements POSIX ustar, GNU long names (L/K) and pax extended headers (path, linkpath, size, mtime).

export interface TarEntry {
  path: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "other";
  size: number;
  /** Permission bits (and setuid/setgid/sticky). */
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  uid: number;
  gid: number;
  /** A link's target. */
  link?: string;
}

/** The archive is not tar (a bad first header), or breaks off inside an entry. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarError";
  }
}

const BLOCK = 512;
/** A pax or GNU long-name record larger than this is refused (real ones are a path long). */
const MAX_META_BYTES = 1024 * 1024;

const TYPES: Record<string, TarEntry["type"]> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

/** Reads exact byte counts out of a chunk stream, keeping only the unread part of one chunk. */
function byteReader(chunks: AsyncIterable<Uint8Array>) {
  const iterator = chunks[Symbol.asyncIterator]();
  let current: Uint8Array = new Uint8Array(0);
  let at = 0;
  const fill = async () => {
    while (at >= current.length) {
      const next = await iterator.next();
      if (next.done) return false;
      current = next.value;
      at = 0;
    }
    return true;
  };
  return {
    /** Exactly `n` bytes, or undefined if the stream ends first. */
    async read(n: number): Promise<Uint8Array | undefined> {
      const out = new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        if (!await fill()) return undefined;
        const take = Math.min(n - filled, current.length - at);
        out.set(current.subarray(at, at + take), filled);
        at += take;
        filled += take;
      }
      return out;
    },
    /** Skips `n` bytes; false if the stream ends first. */
    async skip(n: number): Promise<boolean> {
      let left = n;
      while (left > 0) {
        if (!await fill()) return false;
        const take = Math.min(left, current.length - at);
        at += take;
        left -= take;
      }
      return true;
    },
    async close() {
      await iterator.return?.();
    },
  };
}

const decoder = new TextDecoder();

function text(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

/** An octal field, or GNU's base-256 (high bit set) for large sizes and ids. */
function number(block: Uint8Array, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    return value;
  }
  const digits = text(block, start, length).trim();
  return digits === "" ? 0 : parseInt(digits, 8) || 0;
}

function checksumOk(block: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === number(block, 148, 8);
}

/** Pax records: `<length> <key>=<value>\n`, repeated. */
function paxRecords(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>();
  const all = decoder.decode(data);
  let at = 0;
  while (at < all.length) {
    const space = all.indexOf(" ", at);
    const length = parseInt(all.slice(at, space), 10);
    if (space < 0 || !(length > 0)) break;
    // Lengths count bytes; the records the UI reads are ASCII keys with UTF-8 values.
    const record = decoder.decode(new TextEncoder().encode(all.slice(at)).subarray(0, length));
    const equals = record.indexOf("=");
    if (equals > 0) {
      records.set(record.slice(record.indexOf(" ") + 1, equals), record.slice(equals + 1, -1));
    }
    at += record.length;
  }
  return records;
}

/**
 * The entries of a tar stream, in order. File contents are skipped as they stream by. Stops at
 * the end-of-archive blocks (or the stream's end between entries); throws TarError when the
 * first header is not tar, or the stream ends inside an entry.
 */
export async function* tarEntries(
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<TarEntry> {
  const reader = byteReader(chunks);
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  let first = true;
  try {
    while (true) {
      const block = await reader.read(BLOCK);
      if (!block) {
        if (first) throw new TarError("empty stream");
        return;
      }
      if (block.every((byte) => byte === 0)) return;
      if (!checksumOk(block)) {
        throw new TarError(first ? "not a tar archive" : "a tar header is corrupt");
      }
      first = false;
      const flag = String.fromCharCode(block[156]);
      const size = number(block, 124, 12);
      if (flag === "L" || flag === "K" || flag === "x" || flag === "g") {
        if (size > MAX_META_BYTES) throw new TarError("a tar metadata record is too large");
        const data = await reader.read(Math.ceil(size / BLOCK) * BLOCK);
        if (!data) throw new TarError("the archive ends inside an entry");
        const content = data.subarray(0, size);
        if (flag === "L") longName = text(content, 0, content.length);
        else if (flag === "K") longLink = text(content, 0, content.length);
        else if (flag === "x") pax = paxRecords(content);
        continue;
      }
      const ustar = text(block, 257, 6).startsWith("ustar");
      const prefix = ustar ? text(block, 345, 155) : "";
      const name = text(block, 0, 100);
      const path = pax.get("path") ?? longName ?? (prefix ? `${prefix}/${name}` : name);
      const link = pax.get("linkpath") ?? longLink ?? text(block, 157, 100);
      const entrySize = pax.has("size") ? Number(pax.get("size")) || 0 : size;
      const entry: TarEntry = {
        path,
        type: TYPES[flag] ?? "other",
        size: TYPES[flag] === "file" ? entrySize : 0,
        mode: number(block, 100, 8) & 0o7777,
        mtime: pax.has("mtime") ? Math.floor(Number(pax.get("mtime"))) : number(block, 136, 12),
        uid: number(block, 108, 8),
        gid: number(block, 116, 8),
      };
      if (entry.type === "symlink" || entry.type === "hardlink") entry.link = link;
      longName = longLink = undefined;
      pax = new Map();
      yield entry;
      if (!await reader.skip(Math.ceil(entrySize / BLOCK) * BLOCK)) {
        throw new TarError("the archive ends inside an entry");
      }
    }
  } finally {
    await reader.close();
  }
}
