// Unit tests of src/forwarded.ts: addresses and ranges, the client behind trusted proxies, hosts.

import {
  formatIp,
  inRanges,
  isHost,
  parseCidrs,
  parseIp,
  resolveClient,
} from "../src/forwarded.ts";
import { assert, assertEquals, assertThrows } from "./helpers.ts";

const canonical = (text: string) => {
  const bytes = parseIp(text);
  return bytes && formatIp(bytes);
};

Deno.test("forwarded: addresses parse to one canonical text", () => {
  assertEquals(canonical("10.1.2.3"), "10.1.2.3");
  assertEquals(canonical("::ffff:10.1.2.3"), "10.1.2.3", "IPv4-mapped is IPv4");
  assertEquals(canonical("[2001:DB8::1]:443"), "2001:db8::1");
  assertEquals(canonical("10.1.2.3:8080"), "10.1.2.3");
  assertEquals(canonical("fe80::1%eth0"), "fe80::1");
  assertEquals(canonical("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1", "the first longest run");
  assertEquals(canonical("::"), "::");
  assertEquals(canonical("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
  assertEquals(canonical("64:ff9b::192.0.2.33"), "64:ff9b::c000:221");
  for (
    const bad of ["", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "x", "a b"]
  ) {
    assertEquals(parseIp(bad), undefined, bad);
  }
});

Deno.test("forwarded: ranges, bare addresses, and one clear error", () => {
  const ranges = parseCidrs(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8");
  const has = (ip: string) => inRanges(parseIp(ip)!, ranges);
  assert(has("10.255.0.1") && has("192.168.1.7") && has("fd12::1") && has("::ffff:10.0.0.1"));
  assert(!has("11.0.0.1") && !has("192.168.1.8") && !has("fe00::1"));
  assert(inRanges(parseIp("203.0.113.9")!, parseCidrs("0.0.0.0/0")));
  assertEquals(parseCidrs(""), []);
  for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0.0/8/1", "example.com", "10.0.0.0/x"]) {
    assertThrows(() => parseCidrs(bad), Error, `"${bad}" is not an address range`);
  }
});

Deno.test("forwarded: an untrusted peer's X-Forwarded-* are its own words, ignored", () => {
  const headers = new Headers({
    "x-forwarded-for": "1.1.1.1",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "evil.example",
  });
  assertEquals(resolveClient("203.0.113.5", headers, []), { address: "203.0.113.5" });
  assertEquals(resolveClient("203.0.113.5", headers, parseCidrs("10.0.0.0/8")), {
    address: "203.0.113.5",
  });
  assertEquals(resolveClient(undefined, headers, parseCidrs("0.0.0.0/0")), {
    address: undefined,
  });
});

Deno.test("forwarded: behind trusted proxies the client is the right-most untrusted hop", () => {
  const trusted = parseCidrs("10.0.0.0/8,127.0.0.1");
  const client = (xff: string | null, peer = "127.0.0.1") =>
    resolveClient(peer, new Headers(xff === null ? {} : { "x-forwarded-for": xff }), trusted)
      .address;
  assertEquals(client("198.51.100.7"), "198.51.100.7");
  assertEquals(client("6.6.6.6, 198.51.100.7"), "198.51.100.7", "a client-sent hop is skipped");
  assertEquals(client("6.6.6.6, 198.51.100.7, 10.1.1.1"), "198.51.100.7", "proxy chain");
  assertEquals(client("10.2.2.2, 10.1.1.1"), "10.2.2.2", "all trusted: the farthest");
  assertEquals(client("198.51.100.7, garbage"), "127.0.0.1", "a bad hop: the last trusted one");
  assertEquals(client("::ffff:198.51.100.7"), "198.51.100.7");
  assertEquals(client(null), "127.0.0.1", "no header: the proxy itself");
  assertEquals(client("198.51.100.7", "::ffff:127.0.0.1"), "198.51.100.7", "mapped peer");
});

Deno.test("forwarded: proto and host from a trusted proxy, only when valid", () => {
  const trusted = parseCidrs("127.0.0.1");
  const forwarded = (headers: Record<string, string>) =>
    resolveClient("127.0.0.1", new Headers(headers), trusted).forwarded;
  assertEquals(
    forwarded({ "x-forwarded-proto": "HTTPS", "x-forwarded-host": "reg.example:8443" }),
    {
      proto: "https",
      host: "reg.example:8443",
    },
  );
  assertEquals(forwarded({ "x-forwarded-proto": "https, http", "x-forwarded-host": "a.b, c.d" }), {
    proto: "https",
    host: "a.b",
  });
  assertEquals(forwarded({ "x-forwarded-proto": "javascript", "x-forwarded-host": 'evil"x' }), {
    proto: undefined,
    host: undefined,
  });
});

Deno.test("forwarded: hosts fit for a URL", () => {
  for (
    const good of [
      "reg.example",
      "reg.example:5000",
      "localhost",
      "10.0.0.1:80",
      "[::1]:5000",
      "my_host.lan.",
    ]
  ) {
    assert(isHost(good), good);
  }
  for (
    const bad of [
      'evil.example"',
      "a b",
      "x/y",
      "x@y",
      "[::g]",
      "h:99999",
      "",
      "-a.b",
      `${"a".repeat(64)}.b`,
    ]
  ) {
    assert(!isHost(bad), bad);
  }
});
