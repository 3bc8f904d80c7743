// Owns who the client is behind reverse proxies: trusted ranges, X-Forwarded-For, -Proto and -Host.
// Implements the de-facto X-Forwarded-* headers, believed only from a peer in --trusted-proxies.

/** An address range: 16 bytes (IPv4 as ::ffff:a.b.c.d) and how many leading bits must match. */
export interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

/** What a trusted proxy says the client asked for: the URL scheme and host it reached. */
export interface Forwarded {
  proto?: "http" | "https";
  host?: string;
}

export interface Client {
  /** The client's address: the socket peer, or the right-most untrusted X-Forwarded-For hop. */
  address?: string;
  /** Present only when the peer is a trusted proxy. */
  forwarded?: Forwarded;
}

/** Parses `10.0.0.0/8,::1,…`; a bare address is a /32 or /128. Throws naming the bad entry. */
export function parseCidrs(text: string): Cidr[] {
  return text.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
    const [address, prefix, extra] = part.split("/");
    const bytes = parseIp(address, false);
    const max = bytes && isV4(bytes) ? 32 : 128;
    const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (!bytes || extra !== undefined || !(bits <= max)) {
      throw new Error(`"${part}" is not an address range (e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1)`);
    }
    return { bytes, bits: max === 32 ? bits + 96 : bits };
  });
}

export function inRanges(ip: Uint8Array, ranges: Cidr[]): boolean {
  return ranges.some(({ bytes, bits }) => {
    for (let i = 0; i < 16 && bits > i * 8; i++) {
      const mask = bits >= (i + 1) * 8 ? 0xff : (0xff << (8 - (bits - i * 8))) & 0xff;
      if ((ip[i] & mask) !== (bytes[i] & mask)) return false;
    }
    return true;
  });
}

/**
 * The client of a request. Without a trusted peer the headers are the client's own words and are
 * ignored; behind trusted proxies each appends the address it saw, so the client is the right-most
 * hop that is not one of them (a malformed hop stops the walk at the last trusted one).
 */
export function resolveClient(peer: string | undefined, headers: Headers, trusted: Cidr[]): Client {
  const peerIp = peer === undefined ? undefined : parseIp(peer);
  if (!peerIp) return { address: peer };
  let address = formatIp(peerIp);
  if (!inRanges(peerIp, trusted)) return { address };
  const hops = (headers.get("x-forwarded-for") ?? "").split(",").map((hop) => hop.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    if (hops[i] === "") continue;
    const ip = parseIp(hops[i]);
    if (!ip) break;
    address = formatIp(ip);
    if (!inRanges(ip, trusted)) break;
  }
  const first = (name: string) => headers.get(name)?.split(",")[0].trim();
  const proto = first("x-forwarded-proto")?.toLowerCase();
  const host = first("x-forwarded-host");
  return {
    address,
    forwarded: {
      proto: proto === "http" || proto === "https" ? proto : undefined,
      host: host !== undefined && isHost(host) ? host : undefined,
    },
  };
}

const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOST = new RegExp(
  `^(?:${LABEL}(?:\\.${LABEL})*\\.?|\\[([0-9A-Fa-f:.]+)\\])(?::(\\d{1,5}))?$`,
);

/** A Host header value fit for a URL: a DNS name, IPv4 or [IPv6], and an optional port. */
export function isHost(value: string): boolean {
  const match = value.length <= 261 ? HOST.exec(value) : null;
  if (!match) return false;
  if (match[1] !== undefined && !parseIp(match[1], false)) return false;
  return match[2] === undefined || Number(match[2]) <= 65535;
}

/**
 * An IPv4 or IPv6 address as 16 bytes (IPv4 mapped into ::ffff:0:0/96), or undefined. With
 * `lenient`, the decorations found in X-Forwarded-For and socket addresses are dropped first:
 * `[…]`, a `:port` after IPv4 or `[IPv6]`, and an IPv6 zone (`%eth0`).
 */
export function parseIp(text: string, lenient = true): Uint8Array | undefined {
  let value = text;
  if (lenient) {
    const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value);
    value = bracketed ? bracketed[1] : value.replace(/^(\d+\.\d+\.\d+\.\d+):\d{1,5}$/, "$1");
    value = value.replace(/%[\w.-]+$/, "");
  }
  const bytes = new Uint8Array(16);
  const v4 = (part: string, at: number) => {
    const octets = part.split(".");
    if (octets.length !== 4) return false;
    for (const [i, octet] of octets.entries()) {
      if (!/^(?:0|[1-9]\d{0,2})$/.test(octet) || Number(octet) > 255) return false;
      bytes[at + i] = Number(octet);
    }
    return true;
  };
  if (!value.includes(":")) {
    bytes[10] = bytes[11] = 0xff;
    return v4(value, 12) ? bytes : undefined;
  }
  const halves = value.split("::");
  if (halves.length > 2) return undefined;
  const groups = halves.map((half) => half === "" ? [] : half.split(":"));
  const words: number[][] = [[], []];
  let tail4 = false;
  for (const [side, list] of groups.entries()) {
    for (const [i, group] of list.entries()) {
      const last = side === groups.length - 1 && i === list.length - 1;
      if (last && group.includes(".")) {
        tail4 = true;
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return undefined;
      words[side].push(parseInt(group, 16));
    }
  }
  const count = words[0].length + words[1].length + (tail4 ? 2 : 0);
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const tail = [...words[1]];
  words[0].forEach((word, i) => (bytes[2 * i] = word >> 8, bytes[2 * i + 1] = word & 0xff));
  const end = tail4 ? 12 : 16;
  tail.forEach((word, i) => {
    const at = end - 2 * (tail.length - i);
    bytes[at] = word >> 8;
    bytes[at + 1] = word & 0xff;
  });
  if (tail4 && !v4(groups[groups.length - 1].at(-1)!, 12)) return undefined;
  return bytes;
}

export function isV4(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/** The canonical text of an address: dotted IPv4, or lowercase IPv6 with the longest zero run `::`. */
export function formatIp(bytes: Uint8Array): string {
  if (isV4(bytes)) return bytes.subarray(12).join(".");
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  let best = [-1, 0];
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best[1] && j - i > 1) best = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((word) => word.toString(16));
  if (best[0] < 0) return hex.join(":");
  return `${hex.slice(0, best[0]).join(":")}::${hex.slice(best[0] + best[1]).join(":")}`;
}
