// End-to-end: the version check, common headers, unknown routes, 405 + Allow, X-Forwarded-*.
// Runs against a real listening server on fs and memory storage.

import {
  assert,
  assertEquals,
  assertError,
  assertMatch,
  digest,
  pushImage,
  rawRequest,
  serverTest,
} from "../helpers.ts";

const D = `sha256:${"a".repeat(64)}`;

serverTest("GET /v2/ is 200 {} with the API version header; HEAD too", async ({ client }) => {
  const res = await client.get("/v2/");
  assertEquals(res.status, 200);
  assertEquals(res.json(), {});
  assertMatch(res.headers.get("content-type"), /^application\/json/);
  assertEquals(res.headers.get("docker-distribution-api-version"), "registry/2.0");
  assert(res.headers.get("x-request-id"), "a request id header");
  const head = await client.head("/v2/");
  assertEquals(head.status, 200);
  assertEquals(head.body.length, 0);
});

serverTest("Docker-Distribution-API-Version on every response, errors included", async (s) => {
  const { client } = s;
  const image = await pushImage(client, "app", "v1");
  const responses = [
    await client.get("/v2/"),
    await client.get("/"),
    await client.get("/v2/nope"),
    await client.request("POST", "/v2/"),
    await client.get("/v2/app/manifests/v1"),
    await client.head("/v2/app/manifests/v1"),
    await client.get("/v2/app/manifests/missing"),
    await client.get(`/v2/app/blobs/${digest(image.config)}`),
    await client.get(`/v2/app/blobs/${D}`),
    await client.head(`/v2/app/blobs/${D}`),
    await client.get("/v2/BAD/tags/list"),
    await client.get("/v2/app/tags/list"),
    await client.get("/v2/_catalog"),
    await client.request("POST", "/v2/app/blobs/uploads/"),
    await client.request("DELETE", "/v2/app/manifests/missing"),
  ];
  for (const res of responses) {
    assertEquals(res.headers.get("docker-distribution-api-version"), "registry/2.0", res.text);
  }
  const statuses = new Set(responses.map((r) => r.status));
  for (const status of [200, 202, 400, 404, 405]) assert(statuses.has(status), `status ${status}`);
});

serverTest("unknown routes are 404 with an error body", async ({ client }) => {
  for (
    // `/` is the web UI's page (tests/ui); everything else outside the API is 404.
    const path of ["/v1/", "/v2", "/v2/a", "/v2/a/unknown/x", "/v2/a/tags", "/favicon.ico", "/ui/x"]
  ) {
    const res = await client.get(path);
    assertEquals(res.status, 404, path);
    assert(Array.isArray(res.json().errors), `${path}: error body`);
  }
});

serverTest("wrong methods are 405 with Allow, HEAD listed wherever GET is", async ({ client }) => {
  const cases: [string, string, string[]][] = [
    ["POST", "/v2/", ["GET", "HEAD"]],
    ["DELETE", "/v2/_catalog", ["GET", "HEAD"]],
    ["PUT", "/v2/tags/list", ["GET", "HEAD"]],
    ["POST", "/v2/a/tags/list", ["GET", "HEAD"]],
    ["PUT", `/v2/a/blobs/${D}`, ["DELETE", "GET", "HEAD"]],
    ["PATCH", `/v2/a/blobs/${D}`, ["DELETE", "GET", "HEAD"]],
    ["POST", "/v2/a/manifests/latest", ["DELETE", "GET", "HEAD", "PUT"]],
    ["GET", "/v2/a/blobs/uploads/", ["POST"]],
    ["PUT", "/v2/a/blobs/uploads/", ["POST"]],
    ["POST", "/v2/a/blobs/uploads/0f8fad5b-d9cb-469f-a165-70867728950e", [
      "DELETE",
      "GET",
      "HEAD",
      "PATCH",
      "PUT",
    ]],
    ["DELETE", `/v2/a/referrers/${D}`, ["GET", "HEAD"]],
  ];
  for (const [method, path, allow] of cases) {
    const res = await client.request(method, path);
    assertError(res, 405, "UNSUPPORTED", `${method} ${path}`);
    const got = res.headers.get("allow")?.split(",").map((m) => m.trim()).sort();
    assertEquals(got, allow, `${method} ${path} Allow`);
  }
});

serverTest(
  "Location and Link honour X-Forwarded-Proto and -Host from a trusted proxy",
  async (s) => {
    const { client } = s;
    const forwarded = { "x-forwarded-proto": "https", "x-forwarded-host": "registry.example:8443" };
    const base = "https://registry.example:8443";

    const start = await client.request("POST", "/v2/app/blobs/uploads/", { headers: forwarded });
    assertEquals(start.status, 202);
    assertMatch(
      start.headers.get("location"),
      /^https:\/\/registry\.example:8443\/v2\/app\/blobs\/uploads\//,
    );

    const image = await pushImage(client, "app", "v1");
    const put = await client.request("PUT", "/v2/app/manifests/v2", {
      headers: { ...forwarded, "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: image.manifest,
    });
    assertEquals(put.headers.get("location"), `${base}/v2/app/manifests/${image.digest}`);

    const tags = await client.get("/v2/app/tags/list?n=1", forwarded);
    assertEquals(tags.headers.get("link"), `<${base}/v2/app/tags/list?n=1&last=v1>; rel="next"`);

    const catalog = await client.get("/v2/_catalog?n=1", {
      "x-forwarded-proto": "https, http",
      "x-forwarded-host": "first.example, second.example",
    });
    assertEquals(catalog.json(), { repositories: ["app"] });
    assertEquals(catalog.headers.get("link"), null, "one repository: no next page");

    const plain = await client.request("POST", "/v2/app/blobs/uploads/");
    assert(plain.headers.get("location")!.startsWith(`${s.url}/v2/app/blobs/uploads/`));

    // The first value of a comma-separated list is the client-facing one.
    await pushImage(client, "other", "v1");
    const two = await client.get("/v2/_catalog?n=1", {
      "x-forwarded-proto": "https, http",
      "x-forwarded-host": "first.example, second.example",
    });
    assertEquals(
      two.headers.get("link"),
      `<https://first.example/v2/_catalog?n=1&last=app>; rel="next"`,
    );
  },
  { trustedProxies: ["127.0.0.1"] },
);

serverTest("X-Forwarded-* from a peer that is not a trusted proxy are ignored", async (s) => {
  const forwarded = { "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" };
  const start = await s.client.request("POST", "/v2/app/blobs/uploads/", { headers: forwarded });
  assertEquals(start.status, 202);
  assert(start.headers.get("location")!.startsWith(`${s.url}/v2/app/blobs/uploads/`));
}, { trustedProxies: ["10.0.0.0/8"] });

serverTest("a Host that is no host name is 400, never copied into Location", async (s) => {
  for (const host of ['evil.example"', "user@evil.example"]) {
    const res = await rawRequest(s.url, "POST", "/v2/app/blobs/uploads/", "", host);
    assertEquals(res.status, 400, `${host}: ${res.head}`);
    assert(!res.head.toLowerCase().includes("location:"), res.head);
  }
  // From a trusted proxy, an invalid X-Forwarded-Host falls back to the Host header.
  const start = await s.client.request("POST", "/v2/app/blobs/uploads/", {
    headers: { "x-forwarded-host": 'evil.example"' },
  });
  assert(start.headers.get("location")!.startsWith(`${s.url}/v2/app/blobs/uploads/`));
}, { trustedProxies: ["127.0.0.1"] });
