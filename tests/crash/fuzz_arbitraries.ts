// fast-check arbitraries of malformed registry requests, by category: names, digests, ranges,
// JSON, framing, headers, upload sessions and the token endpoint. Every write goes to `fuzz/…`
// or to an invalid name (never to the protected image's repository), and no generated manifest
// can be accepted (each references a digest nothing holds), so the catalog must not change.

import fc from "fast-check";
import {
  bytesOf,
  concatBytes,
  type RawRequest,
  type RequestParts,
  serialize,
} from "./fuzz_http.ts";

/** What the generators may point at: the protected image and upload sessions made beforehand. */
export interface FuzzContext {
  keep: { name: string; tag: string; manifest: string; blobs: string[] };
  /** Paths (with their signed `?_state=`) of sessions started in `fuzz/sessions`. */
  sessions: string[];
}

export const CATEGORIES = [
  "names",
  "digests",
  "ranges",
  "json",
  "framing",
  "headers",
  "uploads",
  "token",
] as const;
export type Category = typeof CATEGORIES[number];
export interface FuzzRequest extends RawRequest {
  category: Category;
  /** The sub-case within the category (a framing mutation, a kind of JSON body, headers). */
  label?: string;
}

const WRITES = new Set(["PUT", "POST", "PATCH", "DELETE"]);
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPES = [
  OCI_MANIFEST,
  OCI_INDEX,
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];

const hex = (min: number, max = min) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: min, maxLength: max });
const unknownDigest = hex(64).map((h) => `sha256:${h}`);
const badDigest = fc.oneof(
  fc.constantFrom(
    "",
    "sha256",
    "sha256:",
    ":abc",
    "sha256::ab",
    "SHA256:" + "a".repeat(64),
    "sha256:" + "A".repeat(64),
    "sha256:" + "g".repeat(64),
    "sha512:" + "a".repeat(64),
    "md5:" + "a".repeat(32),
    "sha256:../../../etc/passwd",
    "sha256:%2e%2e%2f%2e%2e",
    "sha256:" + "a".repeat(64) + "%00",
    "a+b.c_d-e:xyz",
    "sha256:" + "a".repeat(5000),
  ),
  hex(0, 130).map((h) => `sha256:${h}`),
  fc.string({ maxLength: 80 }).map(encodeURIComponent),
);
const fuzzName = fc.stringMatching(/^fuzz\/[a-z0-9]{1,8}(\/[a-z0-9]{1,8}){0,2}$/);
const badName = fc.oneof(
  fc.constantFrom(
    "",
    "A",
    "UPPER/case",
    "a//b",
    "a/",
    "/a",
    "..",
    "a/../b",
    "fuzz/./a",
    "fuzz/%2e%2e/x",
    ".a",
    "a.",
    "a___b",
    "-a",
    "_catalog",
    "fuzz/_manifests",
    "a%2Fb",
    "a%zz",
    "a%",
    "a b",
    "a\tb",
    "\u00e4",
    "a\u0000b",
    "x".repeat(256),
    "ab/".repeat(100) + "c",
    "v2",
    "fuzz/a/blobs/uploads",
  ),
  fc.stringMatching(/^[a-z0-9._\/-]{1,60}$/),
  fc.string({ maxLength: 40 }).map((s) => s.split("/").map(encodeURIComponent).join("/")),
  fc.string({ unit: "binary-ascii", maxLength: 20 }),
);
const badTag = fc.oneof(
  fc.constantFrom(".hidden", "-x", "a".repeat(129), "a b", "%00", "", "t\u00e4g", "a:b", "..", "."),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
);
const tag = fc.oneof(fc.constantFrom("v1", "latest"), badTag, fc.stringMatching(/^[\w.-]{1,20}$/));
const method = fc.constantFrom("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "FOO");
const smallBody = fc.uint8Array({ maxLength: 64 });
const uuid = fc.uuid();

/** The base headers of a well-formed request with this body. */
function baseHeaders(body: Uint8Array | undefined, extra: string[] = []): string[] {
  return [
    "Host: 127.0.0.1",
    "User-Agent: fuzz",
    "Connection: close",
    ...(body ? [`Content-Length: ${body.length}`] : []),
    ...extra,
  ];
}

function request(
  category: Category,
  parts: RequestParts,
  target: RawRequest["target"] = "open",
): FuzzRequest {
  return { category, target, method: parts.method.toUpperCase(), bytes: serialize(parts) };
}

const simple = (category: Category, m: string, path: string, body?: Uint8Array, extra?: string[]) =>
  request(category, { method: m, target: path, headers: baseHeaders(body, extra), body });

/** The path a server normalizes `target` to (dot segments and `%2e` resolved, as `new URL`). */
function normalizedPath(target: string): string {
  try {
    return new URL(target, "http://x").pathname;
  } catch {
    return target;
  }
}

/** Writes never reach the protected repository, whatever the path's dot segments say. */
const writeSafe = (keep: string) => (r: { method: string; path: string }) =>
  !WRITES.has(r.method) || !normalizedPath(r.path).startsWith(`/v2/${keep}/`);

function names(ctx: FuzzContext) {
  const shape = fc.constantFrom(
    "manifests",
    "blobs",
    "uploads",
    "session",
    "tags",
    "referrers",
    "bare",
    "catalog",
  );
  return fc.record({ method, name: badName, shape, tag, digest: badDigest, body: smallBody, uuid })
    .map(({ method, name, shape, tag, digest, body, uuid }) => {
      const path = {
        manifests: `/v2/${name}/manifests/${tag}`,
        blobs: `/v2/${name}/blobs/${digest}`,
        uploads: `/v2/${name}/blobs/uploads/`,
        session: `/v2/${name}/blobs/uploads/${uuid}`,
        tags: `/v2/${name}/tags/list`,
        referrers: `/v2/${name}/referrers/${digest}`,
        bare: `/v2/${name}`,
        catalog: `/v2/${name}/_catalog`,
      }[shape];
      return { method, path, body: WRITES.has(method) ? body : undefined };
    }).filter(writeSafe(ctx.keep.name))
    .map(({ method, path, body }) => simple("names", method, path, body));
}

function digests(ctx: FuzzContext) {
  const real = fc.constantFrom(ctx.keep.manifest, ...ctx.keep.blobs);
  const anyDigest = fc.oneof(badDigest, unknownDigest, real);
  const read = fc.record({
    m: fc.constantFrom("GET", "HEAD"),
    kind: fc.constantFrom("blobs", "manifests", "referrers"),
    d: anyDigest,
    q: fc.constantFrom(
      "",
      "?artifactType=",
      "?artifactType=%zz",
      "?artifactType=a/b&artifactType=c",
    ),
  }).map(({ m, kind, d, q }) => simple("digests", m, `/v2/${ctx.keep.name}/${kind}/${d}${q}`));
  const write = fc.record({
    m: fc.constantFrom("DELETE", "PUT", "POST"),
    name: fuzzName,
    kind: fc.constantFrom("blobs", "manifests", "monolithic", "mount", "finish"),
    d: anyDigest,
    body: smallBody,
  }).map(({ m, name, kind, d, body }) => {
    const path = {
      blobs: `/v2/${name}/blobs/${d}`,
      manifests: `/v2/${name}/manifests/${d}`,
      monolithic: `/v2/${name}/blobs/uploads/?digest=${d}`,
      mount: `/v2/${name}/blobs/uploads/?mount=${d}&from=${ctx.keep.name}`,
      finish: `${ctx.sessions[body.length % ctx.sessions.length]}&digest=${d}`,
    }[kind];
    const verb = kind === "monolithic" || kind === "mount" ? "POST" : kind === "finish" ? "PUT" : m;
    return simple("digests", verb, path, verb === "DELETE" ? undefined : body);
  });
  // A manifest must never be acceptable, so `d` (its own digest in the path) is never right.
  return fc.oneof(read, write);
}

function ranges(ctx: FuzzContext) {
  const rangeValue = fc.oneof(
    fc.constantFrom(
      "bytes=5-1",
      "bytes=-0",
      "bytes=0-",
      "bytes=-",
      "bytes=--1",
      "bytes=0-0",
      "bytes=-99999999999999999999",
      "bytes=99999999999999999999-",
      "bytes=0-18446744073709551616",
      "bytes=0-1,2-3",
      "bytes=abc",
      "items=0-1",
      "bytes = 0-1",
      "bytes=1-1-1",
      "",
      "bytes=\u00ff-1",
    ),
    fc.tuple(fc.integer({ min: -5, max: 1 << 21 }), fc.integer({ min: -5, max: 1 << 21 }))
      .map(([a, b]) => `bytes=${a}-${b}`),
    fc.string({ unit: "binary-ascii", maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, "")),
  );
  const conditional = fc.constantFrom(
    [],
    ['If-None-Match: "sha256:x"'],
    ["If-None-Match: *"],
    ["If-None-Match: W/"],
    ["If-Range: garbage"],
    ["If-Match: *"],
    ["If-Modified-Since: yesterday"],
  );
  const reads = fc.record({
    m: fc.constantFrom("GET", "HEAD"),
    d: fc.constantFrom(...ctx.keep.blobs, ctx.keep.manifest),
    range: rangeValue,
    cond: conditional,
  }).map(({ m, d, range, cond }) => {
    const kind = d === ctx.keep.manifest ? "manifests" : "blobs";
    return simple("ranges", m, `/v2/${ctx.keep.name}/${kind}/${d}`, undefined, [
      `Range: ${range}`,
      ...cond,
    ]);
  });
  const patches = fc.record({
    session: fc.constantFrom(...ctx.sessions),
    range: fc.oneof(
      rangeValue,
      fc.tuple(fc.integer({ min: -3, max: 70 }), fc.integer({ min: -3, max: 70 }))
        .map(([a, b]) => `${a}-${b}`),
    ),
    body: smallBody,
  }).map(({ session, range, body }) =>
    simple("ranges", "PATCH", session, body, [
      `Content-Range: ${range}`,
      "Content-Type: application/octet-stream",
    ])
  );
  return fc.oneof(reads, patches);
}

/** JSON templates whose references exist nowhere (so that no mutation makes them acceptable). */
function templates(unknown: string[], subject: string) {
  const d = (i: number, mediaType: string) => ({ mediaType, digest: unknown[i], size: 10 + i });
  return [
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: d(0, "application/vnd.oci.image.config.v1+json"),
      layers: [d(1, "application/vnd.oci.image.layer.v1.tar+gzip")],
      annotations: { a: "b" },
    },
    {
      schemaVersion: 2,
      mediaType: MANIFEST_TYPES[2],
      config: d(0, "application/vnd.docker.container.image.v1+json"),
      layers: [d(1, "application/vnd.docker.image.rootfs.diff.tar.gzip")],
    },
    { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [d(2, OCI_MANIFEST)] },
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/x.fuzz",
      config: d(3, "application/vnd.oci.empty.v1+json"),
      layers: [],
      subject: { mediaType: OCI_MANIFEST, digest: subject, size: 100 },
    },
  ];
}

const PATHS = [
  "schemaVersion",
  "mediaType",
  "config",
  "config.digest",
  "config.size",
  "config.mediaType",
  "layers",
  "layers.0",
  "layers.0.digest",
  "layers.0.size",
  "layers.0.urls",
  "manifests",
  "manifests.0",
  "manifests.0.digest",
  "manifests.0.platform",
  "subject",
  "subject.digest",
  "annotations",
  "annotations.a",
  "artifactType",
];

function mutate(
  value: Record<string, unknown>,
  path: string,
  replacement: unknown,
  remove: boolean,
) {
  const keys = path.split(".");
  let node: Record<string, unknown> = value;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys.at(-1)!;
  if (remove) delete node[last];
  else node[last] = replacement;
}

/** No generated manifest may be accepted: an index with no children would be. */
function acceptable(body: Uint8Array): boolean {
  try {
    const value = JSON.parse(new TextDecoder().decode(body));
    return Array.isArray(value?.manifests) && value.manifests.length === 0;
  } catch {
    return false;
  }
}

function json(ctx: FuzzContext) {
  const mutated = fc.record({
    unknown: fc.array(unknownDigest, { minLength: 4, maxLength: 4 }),
    which: fc.nat(3),
    edits: fc.array(
      fc.record({ path: fc.constantFrom(...PATHS), value: fc.jsonValue(), remove: fc.boolean() }),
      { minLength: 1, maxLength: 4 },
    ),
  }).map(({ unknown, which, edits }) => {
    const value = templates(unknown, ctx.keep.manifest)[which] as Record<string, unknown>;
    for (const e of edits) mutate(value, e.path, e.value, e.remove);
    return bytesOf(JSON.stringify(value));
  });
  const deep = fc.record({ n: fc.integer({ min: 10, max: 200_000 }), obj: fc.boolean() })
    .map(({ n, obj }) =>
      bytesOf(
        obj
          ? '{"a":'.repeat(n) + "1" + "}".repeat(n)
          : `{"schemaVersion":2,"manifests":${"[".repeat(n)}${"]".repeat(n)}}`,
      )
    );
  const wide = fc.record({ n: fc.integer({ min: 1, max: 30_000 }), d: unknownDigest })
    .map(({ n, d }) =>
      bytesOf(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "x", digest: d, size: 1 },
        layers: Array.from({ length: n }, () => ({ mediaType: "x", digest: d, size: 1 })),
      }))
    );
  const odd = fc.constantFrom(
    '{"schemaVersion":2,"schemaVersion":2,"manifests":[]}x',
    '\ufeff{"schemaVersion":2}',
    '{"schemaVersion":2.0000000000000001,"config":{}}',
    '{"schemaVersion":1e400}',
    '{"schemaVersion":"2"}',
    "null",
    "[]",
    '"str"',
    "{",
    "",
    '{"__proto__":{"schemaVersion":2},"constructor":{"prototype":{}}}',
  ).map(bytesOf);
  const labelled = (label: string, arb: fc.Arbitrary<Uint8Array>) =>
    arb.map((bytes) => ({ bytes, label }));
  const body = fc.oneof(
    { arbitrary: labelled("mutated template", mutated), weight: 6 },
    { arbitrary: labelled("random JSON", fc.json({ maxDepth: 4 }).map(bytesOf)), weight: 2 },
    { arbitrary: labelled("odd JSON", odd), weight: 2 },
    { arbitrary: labelled("random bytes", fc.uint8Array({ maxLength: 200 })), weight: 1 },
    { arbitrary: labelled("deep nesting", deep), weight: 1 },
    { arbitrary: labelled("many references", wide), weight: 1 },
    {
      arbitrary: labelled("4 MiB + 1", fc.constant(new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20))),
      weight: 1,
    },
  ).filter((b) => !acceptable(b.bytes));
  const contentType = fc.oneof(
    fc.constantFrom(...MANIFEST_TYPES, "application/json", "", "text/plain; charset=utf-8"),
    fc.constantFrom(...MANIFEST_TYPES).map((t) => `${t}; charset=utf-8`),
    fc.string({ unit: "binary-ascii", maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, "")),
  );
  return fc.record({ name: fuzzName, ref: fc.oneof(tag, unknownDigest), body, contentType })
    .map(({ name, ref, body, contentType }) => ({
      ...simple("json", "PUT", `/v2/${name}/manifests/${ref}`, body.bytes, [
        `Content-Type: ${contentType}`,
      ]),
      label: body.label,
    }));
}

export { acceptable as acceptableManifestForTests, normalizedPath };

/** A well-formed request that a framing mutation then breaks. */
type Base = { target: "open" | "token"; m: string; path: string; body: Uint8Array };

function framing(ctx: FuzzContext) {
  const form = bytesOf("grant_type=password&service=registry&client_id=fuzz&username=a&password=b");
  const base = fc.constantFrom(
    {
      target: "open" as const,
      m: "PUT",
      path: "/v2/fuzz/framing/manifests/t",
      body: bytesOf('{"a":1}'),
    },
    {
      target: "open" as const,
      m: "POST",
      path: `/v2/fuzz/framing/blobs/uploads/?digest=sha256:${"0".repeat(64)}`,
      body: bytesOf("abc"),
    },
    { target: "open" as const, m: "PATCH", path: ctx.sessions[0], body: bytesOf("abcdef") },
    { target: "open" as const, m: "GET", path: "/v2/", body: new Uint8Array() },
    { target: "token" as const, m: "POST", path: "/auth/token", body: form },
  );
  const chunk = (b: Uint8Array, size = b.length.toString(16), ext = "") =>
    concatBytes(bytesOf(`${size}${ext}\r\n`), b, bytesOf("\r\n"));
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("cl-short"), k: fc.integer({ min: 1, max: 1000 }) }),
    fc.record({ kind: fc.constant("cl-long"), k: fc.integer({ min: 1, max: 5 }) }),
    fc.record({
      kind: fc.constant("cl-value"),
      v: fc.constantFrom(
        "-1",
        "+5",
        " 5",
        "0x5",
        "1e2",
        "",
        "99999999999999999999",
        "5, 5",
        "5,6",
        "\u00ff",
      ),
    }),
    fc.record({ kind: fc.constantFrom("dup-cl-same", "dup-cl-diff", "cl-and-te") }),
    fc.record({
      kind: fc.constant("chunked"),
      size: fc.constantFrom("", "zz", "-1", "ffffffffffffffffffff", " 3", "3 ", "0x3"),
      ext: fc.constantFrom("", ';a="\x01"', ";a", ';a="unterminated', ";" + "x".repeat(10000)),
      end: fc.constantFrom("0\r\n\r\n", "", "0\r\nTrailer: x\r\n\r\n", "0\r\n", "1\r\n"),
    }),
    fc.record({
      kind: fc.constant("te"),
      te: fc.constantFrom(
        "gzip, chunked",
        "chunked, gzip",
        "identity",
        "xchunked",
        "chunked\x0b",
        "CHUNKED",
      ),
    }),
    fc.record({ kind: fc.constantFrom("complete", "http10", "expect", "lf-only", "pipelined") }),
    fc.record({
      kind: fc.constant("line"),
      line: fc.constantFrom(
        "get /v2/ HTTP/1.1",
        "GET  /v2/ HTTP/1.1",
        "GET\t/v2/ HTTP/1.1",
        "GET /v2/ HTTP/1.2",
        "GET /v2/ HTTP/2.0",
        "GET /v2/ HTTP/0.9",
        "GET /v2/ HTTP/1.1x",
        "GET /v2/",
        "GET http://127.0.0.1/v2/ HTTP/1.1",
        "GET http://other.example/v2/_catalog HTTP/1.1",
        "OPTIONS * HTTP/1.1",
        "CONNECT 127.0.0.1:1 HTTP/1.1",
        "GET v2/ HTTP/1.1",
        "GET /v2/#frag HTTP/1.1",
        "GET /v2/?%zz HTTP/1.1",
        `GET /v2/${"a/".repeat(20000)}tags/list HTTP/1.1`,
        "PRI * HTTP/2.0",
      ),
    }),
    fc.record({
      kind: fc.constant("header-line"),
      line: fc.constantFrom(
        "NoColon",
        " Folded: x",
        "Space : x",
        "X-Nul: a\x00b",
        "X-High: \u00ff\u00fe",
        ": empty-name",
        "X-Long: " + "a".repeat(100_000),
        ...Array.from({ length: 3 }, (_, i) => `X-Many${i}: ` + "h".repeat(10)),
      ),
      repeat: fc.constantFrom(1, 2, 1000),
    }),
    fc.record({
      kind: fc.constant("garbage"),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
    }),
  );
  return fc.record({ base, mut: mutation }).map(({ base, mut }) => ({
    ...framed(base, mut),
    halfClose: true,
    label: `${base.m} ${base.path.split("?")[0].slice(0, 30)}: ` +
      Object.entries(mut).map(([k, v]) =>
        `${k}=${JSON.stringify(v instanceof Uint8Array ? `${v.length} bytes` : v).slice(0, 40)}`
      ).join(" "),
  }));
  function framed(base: Base, mut: { kind: string }): FuzzRequest {
    const { body } = base;
    const headers = (extra: string[]) => ["Host: 127.0.0.1", "Connection: close", ...extra];
    const ct = base.target === "token"
      ? "Content-Type: application/x-www-form-urlencoded"
      : "Content-Type: application/octet-stream";
    const parts: RequestParts = { method: base.m, target: base.path, headers: [], body };
    const m = mut as Record<string, unknown> & { kind: string };
    switch (m.kind) {
      case "cl-short":
        parts.headers = headers([ct, `Content-Length: ${body.length + (m.k as number)}`]);
        break;
      case "cl-long":
        parts.headers = headers([
          ct,
          `Content-Length: ${Math.max(0, body.length - (m.k as number))}`,
        ]);
        break;
      case "cl-value":
        parts.headers = headers([ct, `Content-Length: ${m.v}`]);
        break;
      case "dup-cl-same":
        parts.headers = headers([
          ct,
          `Content-Length: ${body.length}`,
          `Content-Length: ${body.length}`,
        ]);
        break;
      case "dup-cl-diff":
        parts.headers = headers([
          ct,
          `Content-Length: ${body.length}`,
          `Content-Length: ${body.length + 1}`,
        ]);
        break;
      case "cl-and-te":
        parts.headers = headers([
          ct,
          `Content-Length: ${body.length}`,
          "Transfer-Encoding: chunked",
        ]);
        parts.body = concatBytes(chunk(body), bytesOf("0\r\n\r\n"));
        break;
      case "chunked":
        parts.headers = headers([ct, "Transfer-Encoding: chunked"]);
        parts.body = concatBytes(
          chunk(body, (m.size as string) || undefined, m.ext as string),
          bytesOf(m.end as string),
        );
        break;
      case "te":
        parts.headers = headers([ct, `Transfer-Encoding: ${m.te}`]);
        parts.body = concatBytes(chunk(body), bytesOf("0\r\n\r\n"));
        break;
      case "complete": // well-formed, then half-closed (RFC 9112 §9.6 lets a client do that)
        parts.headers = headers([ct, `Content-Length: ${body.length}`]);
        break;
      case "http10":
        parts.version = "HTTP/1.0";
        parts.headers = ["Host: 127.0.0.1", ct];
        break;
      case "expect":
        parts.headers = headers([ct, `Content-Length: ${body.length}`, "Expect: 100-continue"]);
        break;
      case "lf-only":
        parts.eol = "\n";
        parts.headers = headers([ct, `Content-Length: ${body.length}`]);
        break;
      case "pipelined": {
        const first = serialize({
          ...parts,
          headers: ["Host: 127.0.0.1", ct, `Content-Length: ${body.length}`],
        });
        const second = bytesOf("BROKEN\r\n\r\n");
        return {
          category: "framing",
          target: base.target,
          method: base.m,
          bytes: concatBytes(first, second),
        };
      }
      case "line": {
        const raw = bytesOf(`${m.line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        return {
          category: "framing",
          target: "open",
          method: (m.line as string).split(/\s/)[0].toUpperCase(),
          bytes: raw,
        };
      }
      case "header-line":
        parts.headers = headers([
          ct,
          `Content-Length: ${body.length}`,
          // A long line once (1000 of them would be 100 MB), a short one up to 1000 times.
          ...Array.from(
            { length: (m.line as string).length > 1000 ? 1 : m.repeat as number },
            () => m.line as string,
          ),
        ]);
        break;
      case "garbage":
        return { category: "framing", target: "open", method: "GET", bytes: m.bytes as Uint8Array };
    }
    return request("framing", parts, base.target);
  }
}

function headers(ctx: FuzzContext) {
  const base = fc.constantFrom(
    { m: "GET", path: "/v2/" },
    { m: "GET", path: `/v2/${ctx.keep.name}/manifests/${ctx.keep.tag}` },
    { m: "HEAD", path: `/v2/${ctx.keep.name}/manifests/${ctx.keep.tag}` },
    { m: "GET", path: `/v2/${ctx.keep.name}/blobs/${ctx.keep.blobs[0]}` },
    { m: "GET", path: `/v2/${ctx.keep.name}/tags/list` },
    { m: "GET", path: `/v2/${ctx.keep.name}/referrers/${ctx.keep.manifest}` },
    { m: "GET", path: "/v2/_catalog" },
    { m: "GET", path: "/v2/tags/list" },
    { m: "POST", path: "/v2/fuzz/headers/blobs/uploads/" },
    {
      m: "POST",
      path: `/v2/fuzz/headers/blobs/uploads/?mount=${ctx.keep.blobs[0]}&from=${ctx.keep.name}`,
    },
    { m: "PUT", path: "/v2/fuzz/headers/manifests/t" },
  );
  const query = fc.constantFrom(
    "",
    "?n=-1",
    "?n=abc",
    "?n=99999999999999999999",
    "?n=0",
    "?n=1&last=%zz",
    "?last=" + "z".repeat(5000),
    "?n=1&n=2",
    "?%",
    "?a=%E0%A4%A",
  );
  const value = fc.string({ unit: "binary-ascii", maxLength: 60 }).map((s) =>
    s.replace(/[\r\n]/g, "")
  );
  const header = fc.oneof(
    fc.constantFrom(
      "Host: a b",
      "Host: ",
      "Host: [::1",
      "Host: 127.0.0.1:99999",
      "Host: x@y",
      "Host: a/b",
      "Host: \u00e4",
      "Host: %00",
      'X-Forwarded-Host: evil"x',
      "X-Forwarded-Host: a b",
      "X-Forwarded-Host: [::1]:x",
      "X-Forwarded-Proto: javascript",
      "X-Forwarded-Proto: ",
      "X-Forwarded-Proto: https, http",
      "Accept: */*;q=abc",
      "Accept: " + MANIFEST_TYPES.join(",").repeat(200),
      "Authorization: Basic !!!",
      "Authorization: Basic " + btoa("nocolon"),
      "Authorization: Bearer a.b.c",
      "Authorization: Bearer " + "x".repeat(10000),
      "Authorization: Digest x",
      "Content-Type: " + "x".repeat(5000),
      "Connection: keep-alive, Upgrade",
      "Upgrade: websocket",
      "Upgrade: h2c",
      "Accept-Encoding: gzip;q=0, *;q=x",
    ),
    value.map((v) => `Host: ${v}`),
    value.map((v) => `X-Forwarded-Host: ${v}`),
    value.map((v) => `Accept: ${v}`),
    fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,20}$/), value).map(([k, v]) => `${k}: ${v}`),
  );
  return fc.record({
    base,
    query,
    extra: fc.array(header, { minLength: 1, maxLength: 3 }),
    dropHost: fc.boolean(),
  }).map(({ base, query, extra, dropHost }) => {
    const body = base.m === "PUT" ? bytesOf("{}") : undefined;
    const hs = baseHeaders(body).filter((h) => !(dropHost && h.startsWith("Host:")));
    const req = request("headers", {
      method: base.m,
      target: `${base.path}${base.path.includes("?") ? query.replace("?", "&") : query}`,
      headers: [...hs, ...extra],
      body,
    });
    return { ...req, label: extra.map((h) => h.slice(0, 40)).join(" + ") };
  });
}

function uploads(ctx: FuzzContext) {
  const tamper = fc.constantFrom(
    (s: string) => s.replace(/_state=[^&]*/, ""),
    (s: string) => s.replace(/_state=([^.]*)\.(.)/, "_state=$1.A"),
    (s: string) => s.replace(/_state=/, "_state=zz"),
    (s: string, id: string) => s.replace(/\/[0-9a-f-]{36}\?/, `/${id}?`),
    (s: string) => s.replace(/\/[0-9a-f-]{36}\?/, "/not-a-uuid?"),
    (s: string) => s.replace("fuzz/sessions", "fuzz/other"),
    (s: string) => s.replace("fuzz/sessions", "Fuzz/Sessions"),
    (s: string) => `${s}&_state=x`,
    (s: string) => s,
  );
  return fc.record({
    m: fc.constantFrom("GET", "PATCH", "PUT", "DELETE"),
    session: fc.constantFrom(...ctx.sessions),
    tamper,
    uuid,
    digest: fc.oneof(badDigest, unknownDigest),
    body: smallBody,
  }).map(({ m, session, tamper, uuid, digest, body }) => {
    const path = tamper(session, uuid) + (m === "PUT" ? `&digest=${digest}` : "");
    return simple("uploads", m, path, m === "PATCH" || m === "PUT" ? body : undefined);
  });
}

function token(_ctx: FuzzContext) {
  const field = fc.oneof(
    fc.string({ maxLength: 30 }).map(encodeURIComponent),
    fc.constantFrom("%zz", "%", "a%00b", "x".repeat(3000), "fuzz", "pw"),
  );
  const scope = fc.oneof(
    fc.constantFrom(
      "repository:a:pull",
      "repository:a:pull,push",
      "repository::",
      "registry:catalog:*",
      ":::",
      "repository:127.0.0.1:5000/a:pull",
      "repository:a:" + "x,".repeat(1000),
    ),
    fc.string({ maxLength: 40 }),
  ).map(encodeURIComponent);
  const basic = fc.oneof(
    fc.tuple(field, field).map(([u, p]) => `Authorization: Basic ${btoa(`${u}:${p}`)}`),
    fc.constantFrom(
      `Authorization: Basic ${btoa("fuzz:fuzz-password")}`,
      `Authorization: Basic ${btoa("fuzz:wrong")}`,
      "Authorization: Basic ===",
      "Authorization: Bearer " + ["eyJhbGciOiJub25lIn0", "eyJzdWIiOiJ4In0", ""].join("."),
      "Authorization: Bearer e30.e30.e30",
    ),
  );
  const get = fc.record({
    scopes: fc.array(scope, { maxLength: 3 }),
    svc: field,
    auth: fc.option(basic),
  })
    .map(({ scopes, svc, auth }) =>
      request("token", {
        method: "GET",
        target: `/auth/token?service=${svc}${scopes.map((s) => `&scope=${s}`).join("")}`,
        headers: baseHeaders(undefined, auth ? [auth] : []),
      }, "token")
    );
  const post = fc.record({
    grant: fc.oneof(fc.constantFrom("password", "refresh_token", "client_credentials", ""), field),
    user: field,
    pass: field,
    refresh: fc.oneof(field, fc.constant("e30.e30.e30")),
    scope: scope,
    ct: fc.constantFrom(
      "application/x-www-form-urlencoded",
      "application/json",
      "",
      "multipart/form-data; boundary=x",
    ),
  }).map(({ grant, user, pass, refresh, scope, ct }) => {
    const body = bytesOf(
      `grant_type=${grant}&service=registry&client_id=fuzz&username=${user}&password=${pass}` +
        `&refresh_token=${refresh}&scope=${scope}`,
    );
    return request("token", {
      method: "POST",
      target: "/auth/token",
      headers: baseHeaders(body, [`Content-Type: ${ct}`]),
      body,
    }, "token");
  });
  const v2 = basic.map((auth) =>
    request(
      "token",
      { method: "GET", target: "/v2/", headers: baseHeaders(undefined, [auth]) },
      "token",
    )
  );
  return fc.oneof(get, post, v2);
}

/** Every category, each request tagged with its own. */
export function fuzzRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    { arbitrary: names(ctx), weight: 15 },
    { arbitrary: digests(ctx), weight: 15 },
    { arbitrary: ranges(ctx), weight: 10 },
    { arbitrary: json(ctx), weight: 15 },
    { arbitrary: framing(ctx), weight: 15 },
    { arbitrary: headers(ctx), weight: 15 },
    { arbitrary: uploads(ctx), weight: 10 },
    { arbitrary: token(ctx), weight: 5 },
  );
}
