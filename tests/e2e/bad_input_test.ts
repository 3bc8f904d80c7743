// End-to-end: bad input — invalid names (also percent-encoded and raw `../`), tags, digests,
// oversize manifests, bad chunks, bad Range, bad n, malformed HTTP (a Host that makes no URL, short
// or badly framed bodies). Each gets its error code, never a 500; storage is unchanged.

import {
  assert,
  assertEquals,
  assertError,
  bytes,
  digest,
  jsonBytes,
  OCI_MANIFEST,
  pushImage,
  randomBytes,
  rawExchange,
  rawRequest,
  serverTest,
  snapshot,
  spawnRegistry,
  tempDir,
  type TestServer,
  withDigest,
  withServer,
} from "../helpers.ts";
import { DRIVER_KINDS, type DriverKind } from "../helpers.ts";
import { authServer } from "../auth/fixtures.ts";

const D = `sha256:${"a".repeat(64)}`;

const BAD_NAMES = [
  "App",
  "a..b",
  "_hidden",
  "a/_layers",
  "a/_manifests/x",
  "-a",
  "a-",
  "a%2fb",
  "a%2e%2e",
  "a%00b",
  "a%20b",
  "x".repeat(256),
  "\u00e9",
];

/** A server whose fs data dir sits alone inside a temp dir, so escapes would show up next to it. */
async function isolated(
  kind: DriverKind,
  fn: (s: TestServer, parent?: string) => Promise<void>,
) {
  await using dir = await tempDir("registry-bad-input-");
  const dataDir = `${dir.path}/data`;
  await Deno.mkdir(dataDir);
  await using s = await withServer(kind, kind === "fs" ? { dataDir } : {});
  await fn(s, kind === "fs" ? dir.path : undefined);
  if (kind === "fs") {
    const entries = [...Deno.readDirSync(dir.path)].map((e) => e.name);
    assertEquals(entries, ["data"], "nothing written outside the data directory");
  }
}

for (const kind of DRIVER_KINDS) {
  Deno.test(`${kind}: invalid repository names are 400 NAME_INVALID on every endpoint`, async () => {
    await isolated(kind, async ({ client, driver }) => {
      const image = await pushImage(client, "good", "v1");
      const before = await snapshot(driver);
      for (const name of BAD_NAMES) {
        const requests: [string, string, RequestInit?][] = [
          ["GET", `/v2/${name}/tags/list`],
          ["GET", `/v2/${name}/manifests/v1`],
          ["HEAD", `/v2/${name}/manifests/v1`],
          ["PUT", `/v2/${name}/manifests/v1`, {
            body: image.manifest,
            headers: { "content-type": OCI_MANIFEST },
          }],
          ["DELETE", `/v2/${name}/manifests/v1`],
          ["GET", `/v2/${name}/blobs/${D}`],
          ["DELETE", `/v2/${name}/blobs/${D}`],
          ["POST", `/v2/${name}/blobs/uploads/`],
          ["POST", `/v2/${name}/blobs/uploads/?digest=${digest(image.config)}`, {
            body: image.config,
          }],
          ["POST", `/v2/${name}/blobs/uploads/?mount=${digest(image.config)}&from=good`],
          ["GET", `/v2/${name}/referrers/${D}`],
        ];
        for (const [method, path, init] of requests) {
          const res = await client.request(method, path, init);
          const label = `${method} ${path.slice(0, 80)}`;
          if (method === "HEAD") assertEquals(res.status, 400, label);
          else assertError(res, 400, "NAME_INVALID", label);
        }
      }
      // Mounting *from* an invalid name does not mount, and never reads outside.
      const mount = await client.request(
        "POST",
        `/v2/good/blobs/uploads/?mount=${digest(image.config)}&from=..%2F..%2Fetc`,
      );
      assertEquals(mount.status, 202);
      await client.request("DELETE", mount.headers.get("location")!);
      assertEquals(await snapshot(driver), before, "storage unchanged");
    });
  });

  Deno.test(`${kind}: raw ../ paths never escape or 500`, async () => {
    await isolated(kind, async ({ url, client, driver }) => {
      const image = await pushImage(client, "good", "v1");
      const before = await snapshot(driver);
      const targets = [
        "/v2/../etc/tags/list",
        "/v2/good/../../../etc/passwd/tags/list",
        "/v2/../../blobs/uploads/",
        "/v2/%2e%2e/%2e%2e/blobs/uploads/",
        "/v2/good/%2e%2e/evil/manifests/v1",
        "/v2/good/manifests/..",
        "/v2/good/manifests/%2e%2e",
        "/v2/good/manifests/..%2f..%2fx",
        `/v2/good/blobs/sha256:..%2f..%2f${"a".repeat(58)}`,
        "/v2/good/blobs/uploads/..%2f..%2f..%2fx",
        "/v2/good/blobs/uploads/../../../x",
        "/v2/good/tags/list?n=1&last=../../x",
        "/v2/_catalog?last=../../../../x",
        "/v2//good/tags/list",
        "/v2/good//manifests/v1",
      ];
      for (const method of ["GET", "PUT", "POST", "PATCH", "DELETE"]) {
        for (const target of targets) {
          const res = await rawRequest(url, method, target, method === "PUT" ? "{}" : "");
          assert(
            res.status >= 200 && res.status < 500,
            `${method} ${target}: status ${res.status}`,
          );
          assert(res.status !== 201, `${method} ${target} created something`);
        }
      }
      // Hit a real resource through a normalised path: still served correctly.
      const normalised = await rawRequest(url, "GET", "/v2/other/../good/manifests/v1");
      assert([200, 400, 404].includes(normalised.status), `normalised: ${normalised.status}`);
      assertEquals(await snapshot(driver), before, "storage unchanged");
      assertEquals((await client.get("/v2/good/manifests/v1")).body, image.manifest);
    });
  });
}

serverTest(
  "invalid tags: PUT and DELETE 400 TAG_INVALID, GET 404; invalid digests 400",
  async (s) => {
    const { client, driver } = s;
    const image = await pushImage(client, "app", "v1");
    const before = await snapshot(driver);
    for (const tag of ["x".repeat(129), "-x", ".x", "a%2Fb", "t%00", "%2e%2ex"]) {
      for (const method of ["GET", "PUT", "DELETE"]) {
        const init = method === "PUT"
          ? { body: image.manifest, headers: { "content-type": OCI_MANIFEST } }
          : {};
        // A GET of a reference that cannot be a tag finds nothing, as in distribution.
        const [status, code] = method === "GET" ? [404, "MANIFEST_UNKNOWN"] : [400, "TAG_INVALID"];
        assertError(
          await client.request(method, `/v2/app/manifests/${tag}`, init),
          status,
          code,
          `${method} ${tag}`,
        );
      }
    }
    for (
      const ref of [
        "sha256:short",
        `sha256:${"A".repeat(64)}`,
        "md5:abcd",
        `sha512:${"a".repeat(64)}`,
      ]
    ) {
      for (const method of ["GET", "PUT", "DELETE"]) {
        const init = method === "PUT"
          ? { body: image.manifest, headers: { "content-type": OCI_MANIFEST } }
          : {};
        assertError(
          await client.request(method, `/v2/app/manifests/${ref}`, init),
          400,
          "DIGEST_INVALID",
          `${method} ${ref}`,
        );
      }
      assertError(await client.get(`/v2/app/blobs/${ref}`), 400, "DIGEST_INVALID");
      assertError(
        await client.request("POST", `/v2/app/blobs/uploads/?digest=${ref}`, { body: bytes("x") }),
        400,
        "DIGEST_INVALID",
      );
    }
    assertEquals(await snapshot(driver), before);
  },
);

serverTest("malformed, oversize and mismatched manifests leave storage unchanged", async (s) => {
  const { client, driver } = s;
  const image = await pushImage(client, "app", "v1");
  const before = await snapshot(driver);
  assertError(
    await client.pushManifest("app", "v1", bytes("{]"), OCI_MANIFEST),
    400,
    "MANIFEST_INVALID",
  );
  assertError(
    await client.pushManifest("app", "v2", bytes('{"schemaVersion":2}'), "text/plain"),
    400,
    "MANIFEST_INVALID",
  );
  const big = new Uint8Array(5 * 1024 * 1024).fill(0x20);
  assertEquals((await client.pushManifest("app", "v1", big, OCI_MANIFEST)).status, 413);
  const other = jsonBytes({
    ...JSON.parse(new TextDecoder().decode(image.manifest)),
    annotations: { x: "y" },
  });
  assertError(
    await client.pushManifest("app", image.digest, other, OCI_MANIFEST),
    400,
    "DIGEST_INVALID",
  );
  assertEquals(await snapshot(driver), before);
  assertEquals((await client.get("/v2/app/manifests/v1")).body, image.manifest);
  assertEquals((await client.get("/v2/app/tags/list")).json().tags, ["v1"]);
});

serverTest("out-of-order, overlapping and bad chunks leave the upload unchanged", async (s) => {
  const { client, driver } = s;
  const data = randomBytes(1000, 77);
  const location = await client.startUpload("app");
  const patch = (start: number, end: number, range = `${start}-${end - 1}`) =>
    client.request("PATCH", location, {
      body: data.slice(start, end),
      headers: { "content-range": range },
    });
  assertEquals((await patch(0, 500)).status, 202);
  const before = await snapshot(driver);
  const bad: [number, number, string?][] = [
    [600, 700], // gap
    [0, 500], // repeat
    [400, 600], // overlap
    [499, 600], // overlap by one
    [500, 600, "600-500"], // reversed
    [500, 600, "bytes=abc"], // malformed
    [500, 600, "500-"], // malformed
  ];
  for (const [start, end, range] of bad) {
    const res = await patch(start, end, range);
    assertError(res, 416, "RANGE_INVALID", range ?? `${start}-${end - 1}`);
  }
  assertEquals(await snapshot(driver), before, "storage unchanged");
  assertEquals((await client.get(location)).headers.get("range"), "0-499");
  assertEquals((await patch(500, 1000)).status, 202);
  assertEquals((await client.request("PUT", withDigest(location, digest(data)))).status, 201);
  assertEquals((await client.get(`/v2/app/blobs/${digest(data)}`)).body, data);
});

serverTest("bad Range and bad n change nothing", async (s) => {
  const { client, driver } = s;
  const image = await pushImage(client, "app", "v1");
  const before = await snapshot(driver);
  const layer = digest(image.layers[0]);
  assertError(
    await client.get(`/v2/app/blobs/${layer}`, { range: "bytes=99999-" }),
    416,
    "RANGE_INVALID",
  );
  for (const n of ["-5", "abc", "1.0", "99999999999"]) {
    assertError(await client.get(`/v2/app/tags/list?n=${n}`), 400, "PAGINATION_NUMBER_INVALID");
    assertError(await client.get(`/v2/_catalog?n=${n}`), 400, "PAGINATION_NUMBER_INVALID");
  }
  assertEquals(await snapshot(driver), before);
  assertEquals((await client.get(`/v2/app/blobs/${layer}`)).body, image.layers[0]);
});

Deno.test("malformed HTTP: a Host that makes no URL is 400, with its access-log line", async () => {
  await using registry = await spawnRegistry(["--storage", "memory"]);
  const res = await rawExchange(
    registry.url,
    "GET /v2/ HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
  );
  assertEquals(res.status, 400, res.head);
  assertEquals(JSON.parse(res.body).errors[0].code, "UNSUPPORTED");
  const logged = () =>
    registry.lines.map((line) => JSON.parse(line)).find((record) =>
      record.message === "request" && record["http.response.status"] === 400
    );
  for (let i = 0; i < 100 && !logged(); i++) await new Promise((r) => setTimeout(r, 100));
  assertEquals(logged()?.["url.path"], "/v2/");
});

/** A request whose body ends (the client half-closes) before its framing says it should. */
function shortBody(url: string, head: string, body: string) {
  return rawExchange(url, `${head}Host: ${new URL(url).host}\r\n\r\n${body}`, {
    halfClose: true,
  });
}

Deno.test("malformed HTTP: manifest bodies cut short, or framed twice, are 400 SIZE_INVALID", async () => {
  await using s = await withServer("memory");
  const put = `PUT /v2/app/manifests/v1 HTTP/1.1\r\nContent-Type: ${OCI_MANIFEST}\r\n`;
  const cases = [
    [`${put}Content-Length: 100\r\n`, '{"schemaVersion":'],
    [`${put}Content-Length: 50\r\nContent-Length: 50\r\n`, "{}"],
    [`${put}Transfer-Encoding: chunked\r\n`, "40\r\n{}"],
  ];
  for (const [head, body] of cases) {
    const res = await shortBody(s.url, head, body);
    assertEquals(res.status, 400, `${head}: ${res.head}`);
    assertEquals(JSON.parse(res.body).errors[0].code, "SIZE_INVALID");
  }
  assertEquals((await s.client.get("/v2/app/tags/list")).status, 404, "nothing stored");
});

Deno.test("malformed HTTP: a bad chunk extension or size is never a 500", async () => {
  await using s = await withServer("memory");
  const put = `PUT /v2/app/manifests/v1 HTTP/1.1\r\nContent-Type: ${OCI_MANIFEST}\r\n` +
    "Transfer-Encoding: chunked\r\n";
  for (const chunk of ["2;\x01\r\n{}\r\n0\r\n\r\n", "2x\r\n{}\r\n0\r\n\r\n", "zz\r\n{}\r\n"]) {
    const res = await shortBody(s.url, put, chunk);
    // Deno's HTTP layer closes such a connection without an answer; an answer is a 400.
    assert(Number.isNaN(res.status) || res.status === 400, `${JSON.stringify(chunk)}: ${res.head}`);
  }
  assertEquals((await s.client.get("/v2/")).status, 200);
});

Deno.test("malformed HTTP: a POST /auth/token whose form is cut short is 400", async () => {
  await using s = await authServer({ mode: "token", users: { alice: "secret" } });
  const res = await shortBody(
    s.url,
    "POST /auth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
      "Content-Length: 200\r\n",
    "grant_type=password&username=alice",
  );
  assertEquals(res.status, 400, res.head);
  assertEquals(JSON.parse(res.body).errors[0].code, "SIZE_INVALID");
});
