// Tests of src/proxy/store.ts through a mirror in front of real upstream registries (in-process,
// on 127.0.0.1): hits and misses, the ttl and HEAD revalidation, stale-if-error, error mapping,
// one download for concurrent misses, disconnects, refusals, index children on demand.

import { startServer } from "../../src/server.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { blobPath } from "../../src/storage/paths.ts";
import { parseDigest } from "../../src/grammar.ts";
import {
  assert,
  assertEquals,
  assertError,
  buildImage,
  descriptorOf,
  digest,
  imageIndex,
  jsonBytes,
  OCI_INDEX,
  pushBuiltImage,
  randomBytes,
  registryClient,
  S3_IGNORE,
  s3Fixture,
  tempDir,
  withServer,
} from "../helpers.ts";
import { createFsDriver } from "../../src/storage/fs.ts";
import { authServer, basic, bearer, fetchToken } from "../auth/fixtures.ts";
import {
  countingFetch,
  fetchDigest,
  pullThrough,
  startMirror,
  upstreamAt,
} from "./mirror_helpers.ts";

const image = (seed: number, size = 20_000) =>
  buildImage([randomBytes(size, seed), randomBytes(size / 2, seed + 1)], seed);

Deno.test("mirror: a miss fetches through the token dance, a second pull asks nothing upstream", async () => {
  await using upstream = await authServer({ mode: "token", users: { alice: "pw" } });
  const token = await fetchToken(upstream.url, ["repository:team/app:pull,push"], ["alice", "pw"]);
  const pushed = await pushBuiltImage(upstream.client(bearer(token)), "team/app", "v1", image(1));
  const counting = countingFetch();
  await using mirror = await startMirror(
    [upstreamAt("up", upstream.url, { username: "alice", password: "pw" })],
    { fetch: counting.fetch },
  );
  await pullThrough(mirror.client, "up/team/app", "v1", pushed);
  assert(counting.count("GET", "/auth/token") >= 1, "a token was fetched");
  assertEquals(counting.count("GET", `/v2/team/app/manifests/v1`) >= 1, true);
  const before = counting.sent.length;
  await pullThrough(mirror.client, "up/team/app", "v1", pushed);
  await pullThrough(mirror.client, "up/team/app", pushed.digest, pushed);
  assertEquals(counting.sent.slice(before), [], "the second pull is served from the cache");
});

Deno.test("mirror: a tag moved upstream is seen after the ttl, not before; revalidation is a HEAD", async () => {
  await using upstream = await withServer("memory");
  const first = await pushBuiltImage(upstream.client, "lib/app", "latest", image(3));
  let now = 1_000_000;
  const counting = countingFetch();
  await using mirror = await startMirror([upstreamAt("up", upstream.url, { ttl: 60_000 })], {
    fetch: counting.fetch,
    now: () => now,
  });
  const manifest = async () =>
    (await mirror.client.get("/v2/up/lib/app/manifests/latest")).headers.get(
      "docker-content-digest",
    );
  assertEquals(await manifest(), first.digest);

  // Unchanged upstream, past the ttl: one HEAD, no body fetched again.
  now += 61_000;
  let from = counting.sent.length;
  assertEquals(await manifest(), first.digest);
  assertEquals(counting.sent.slice(from).map((r) => `${r.method} ${r.url.pathname}`), [
    "HEAD /v2/lib/app/manifests/latest",
  ]);

  // Moved upstream: not seen within the ttl …
  const second = await pushBuiltImage(upstream.client, "lib/app", "latest", image(4));
  now += 30_000;
  from = counting.sent.length;
  assertEquals(await manifest(), first.digest);
  assertEquals(counting.sent.length, from, "within the ttl nothing is asked");
  // … and seen after it.
  now += 31_000;
  assertEquals(await manifest(), second.digest);
  await pullThrough(mirror.client, "up/lib/app", "latest", second);
});

Deno.test("mirror: with the upstream gone, cached tags and digests still pull (stale-if-error)", async () => {
  const upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/app", "v1", image(5));
  const other = await pushBuiltImage(upstream.client, "lib/other", "v1", image(6));
  let now = 0;
  await using mirror = await startMirror([upstreamAt("up", upstream.url, { ttl: 1000 })], {
    now: () => now,
    timeout: 2000,
  });
  await pullThrough(mirror.client, "up/lib/app", "v1", pushed);
  await upstream[Symbol.asyncDispose]();
  now += 5000; // past the ttl: the revalidation fails
  await pullThrough(mirror.client, "up/lib/app", "v1", pushed);
  await pullThrough(mirror.client, "up/lib/app", pushed.digest, pushed);
  // Never cached: 503 naming the upstream, and a Retry-After.
  const missing = await mirror.client.get("/v2/up/lib/other/manifests/v1");
  assertError(missing, 503, "UNAVAILABLE");
  assert(missing.text.includes("upstream up"), missing.text);
  assertEquals(missing.headers.get("retry-after"), "5");
  assertError(
    await mirror.client.get(`/v2/up/lib/other/blobs/${digest(other.layers[0])}`),
    503,
    "UNAVAILABLE",
  );
});

Deno.test("mirror: upstream answers map to local ones (404, 401, 429, 5xx)", async () => {
  const answers: Record<string, () => Response> = {
    "/v2/gone/manifests/v1": () => new Response("{}", { status: 404 }),
    "/v2/secret/manifests/v1": () => new Response("{}", { status: 403 }),
    "/v2/busy/manifests/v1": () =>
      new Response("{}", { status: 429, headers: { "retry-after": "30" } }),
    "/v2/broken/manifests/v1": () => new Response("{}", { status: 500 }),
    [`/v2/gone/blobs/${digest(new Uint8Array(1))}`]: () => new Response(null, { status: 404 }),
  };
  const fake = (input: string | URL | Request) =>
    Promise.resolve(
      (answers[new URL(String(input)).pathname] ?? (() => new Response(null, { status: 500 })))(),
    );
  await using mirror = await startMirror([upstreamAt("up", "http://upstream.test")], {
    fetch: fake as typeof fetch,
  });
  const get = (path: string) => mirror.client.get(`/v2/up/${path}`);
  assertError(await get("gone/manifests/v1"), 404, "MANIFEST_UNKNOWN");
  assertError(await get(`gone/blobs/${digest(new Uint8Array(1))}`), 404, "BLOB_UNKNOWN");
  assertError(await get("secret/manifests/v1"), 403, "DENIED");
  const busy = await get("busy/manifests/v1");
  assertError(busy, 503, "UNAVAILABLE");
  assertEquals(busy.headers.get("retry-after"), "30");
  assertError(await get("broken/manifests/v1"), 502, "UNAVAILABLE");
});

Deno.test("mirror: a manifest that does not match its digest is refused and not stored", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/app", "v1", image(7));
  const tampering =
    ((input: string | URL | Request, init?: RequestInit) =>
      fetch(input, init).then(async (response) => {
        if (!new URL(String(input)).pathname.includes("/manifests/") || init?.method === "HEAD") {
          return response;
        }
        const body = new Uint8Array(await response.arrayBuffer());
        body[body.length - 2] ^= 1; // still JSON-ish, wrong digest
        return new Response(body, { status: response.status, headers: response.headers });
      })) as typeof fetch;
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], { fetch: tampering });
  assertError(
    await mirror.client.get(`/v2/up/lib/app/manifests/${pushed.digest}`),
    502,
    "UNAVAILABLE",
  );
  assertError(await mirror.client.get("/v2/up/lib/app/manifests/v1"), 502, "UNAVAILABLE");
  assertEquals(await mirror.driver.list("repositories"), [], "nothing stored");
});

Deno.test("mirror: a blob with wrong bytes breaks off, is not stored, and is fetched again next time", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/app", "v1", image(8, 300_000));
  const layer = pushed.layers[0];
  let corrupt = true;
  const corrupting =
    ((input: string | URL | Request, init?: RequestInit) =>
      fetch(input, init).then(async (response) => {
        if (
          !corrupt || !new URL(String(input)).pathname.endsWith(digest(layer)) ||
          init?.method === "HEAD"
        ) {
          return response;
        }
        const body = new Uint8Array(await response.arrayBuffer());
        body[1000] ^= 0xff;
        return new Response(body, { status: 200, headers: response.headers });
      })) as typeof fetch;
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], { fetch: corrupting });
  const url = `${mirror.url}/v2/up/lib/app/blobs/${digest(layer)}`;
  const response = await fetch(url);
  let failed = false;
  try {
    await response.arrayBuffer();
  } catch {
    failed = true;
  }
  assertEquals(response.status, 200, "the response started before the last byte arrived");
  assert(failed, "and broke off instead of ending with a whole wrong blob");
  assertEquals(
    await mirror.driver.stat(blobPath(parseDigest(digest(layer))!)).then(() => true, () => false),
    false,
    "nothing stored",
  );
  corrupt = false;
  const again = await mirror.client.get(`/v2/up/lib/app/blobs/${digest(layer)}`);
  assertEquals(digest(again.body), digest(layer));
});

Deno.test("mirror: concurrent misses of one blob share one upstream download", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/big", "v1", image(9, 6_000_000));
  const counting = countingFetch();
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], {
    fetch: counting.fetch,
  });
  const layer = pushed.layers[0];
  const path = `/v2/lib/big/blobs/${digest(layer)}`;
  const pulls = await Promise.all(
    Array.from(
      { length: 20 },
      () => fetchDigest(`${mirror.url}/v2/up/lib/big/blobs/${digest(layer)}`),
    ),
  );
  for (const pull of pulls) assertEquals(pull, { status: 200, digest: digest(layer) });
  assertEquals(counting.count("GET", path), 1, "one download");
  assertEquals(counting.count("HEAD", path), 1, "one size lookup");
});

Deno.test("mirror: a client that disconnects mid-blob leaves the download and the cache right", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/big", "v1", image(10, 12_000_000));
  const counting = countingFetch();
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], {
    fetch: counting.fetch,
  });
  const layer = pushed.layers[0];
  const abort = new AbortController();
  const response = await fetch(`${mirror.url}/v2/up/lib/big/blobs/${digest(layer)}`, {
    signal: abort.signal,
  });
  const reader = response.body!.getReader();
  await reader.read();
  abort.abort();
  await reader.cancel().catch(() => {});
  // The download goes on into the cache; once it is there, pulls are whole and local.
  const path = `/v2/lib/big/blobs/${digest(layer)}`;
  for (let i = 0; i < 200; i++) {
    if (
      await mirror.driver.stat(blobPath(parseDigest(digest(layer))!)).then(() => true, () => false)
    ) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const again = await fetchDigest(`${mirror.url}/v2/up/lib/big/blobs/${digest(layer)}`);
  assertEquals(again, { status: 200, digest: digest(layer) });
  assertEquals(counting.count("GET", path), 1, "one download, finished for the cache");
});

Deno.test("mirror: index children are fetched when asked for, not with the index", async () => {
  await using upstream = await withServer("memory");
  const amd = await pushBuiltImage(upstream.client, "lib/multi", undefined, image(11));
  const arm = await pushBuiltImage(upstream.client, "lib/multi", undefined, image(12));
  const index = jsonBytes(imageIndex([
    descriptorOf(amd.descriptor.mediaType, amd.manifest, {
      platform: { architecture: "amd64", os: "linux" },
    }),
    descriptorOf(arm.descriptor.mediaType, arm.manifest, {
      platform: { architecture: "arm64", os: "linux" },
    }),
  ]));
  assertEquals(
    (await upstream.client.pushManifest("lib/multi", "v1", index, OCI_INDEX)).status,
    201,
  );
  const counting = countingFetch();
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], {
    fetch: counting.fetch,
  });
  const got = await mirror.client.get("/v2/up/lib/multi/manifests/v1");
  assertEquals(got.body, index);
  await pullThrough(mirror.client, "up/lib/multi", amd.digest, amd);
  assertEquals(
    counting.count("GET", `/v2/lib/multi/manifests/${arm.digest}`),
    0,
    "arm64 untouched",
  );
  assertEquals(counting.count("GET", `/v2/lib/multi/blobs/${digest(arm.config)}`), 0);
});

Deno.test("mirror: pushes and deletes to a proxied repository are refused; local ones work", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/app", "v1", image(13));
  await using mirror = await startMirror([upstreamAt("up", upstream.url)]);
  await pullThrough(mirror.client, "up/lib/app", "v1", pushed);
  const c = mirror.client;
  assertError(await c.pushBlob("up/lib/app", randomBytes(10, 1)), 405, "UNSUPPORTED");
  assertError(await c.request("POST", "/v2/up/lib/app/blobs/uploads/"), 405, "UNSUPPORTED");
  assertError(
    await c.pushManifest("up/lib/app", "v2", pushed.manifest, pushed.descriptor.mediaType),
    405,
    "UNSUPPORTED",
  );
  assertError(
    await c.request("DELETE", `/v2/up/lib/app/manifests/${pushed.digest}`),
    405,
    "UNSUPPORTED",
  );
  assertError(
    await c.request("DELETE", `/v2/up/lib/app/blobs/${digest(pushed.config)}`),
    405,
    "UNSUPPORTED",
  );
  // A local repository beside the mirror, mounting from the cache.
  const local = await pushBuiltImage(c, "team/app", "v1", image(14));
  await pullThrough(c, "team/app", "v1", local);
  const mount = await c.request(
    "POST",
    `/v2/team/app/blobs/uploads/?mount=${digest(pushed.config)}&from=up/lib/app`,
  );
  assertEquals(mount.status, 201);
});

Deno.test("mirror: tags are listed by the upstream, and from the cache when it is gone", async () => {
  const upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "lib/app", "v1", image(15));
  await pushBuiltImage(upstream.client, "lib/app", "v2", image(16));
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], { timeout: 2000 });
  assertEquals((await mirror.client.get("/v2/up/lib/app/tags/list")).json().tags, ["v1", "v2"]);
  const page = await mirror.client.get("/v2/up/lib/app/tags/list?n=1");
  assertEquals(page.json().tags, ["v1"]);
  assert(page.headers.get("link")?.includes("last=v1"), `${page.headers.get("link")}`);
  assertError(await mirror.client.get("/v2/up/lib/none/tags/list"), 404, "NAME_UNKNOWN");
  await pullThrough(mirror.client, "up/lib/app", "v1", pushed);
  await upstream[Symbol.asyncDispose]();
  assertEquals((await mirror.client.get("/v2/up/lib/app/tags/list")).json().tags, ["v1"]);
});

Deno.test("mirror: containerd's ns and the default upstream reach the same cache", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "library/nginx", "1.27", image(17));
  const counting = countingFetch();
  await using mirror = await startMirror([
    upstreamAt("hub", upstream.url, { namespaces: ["docker.io"], default: true, dockerHub: true }),
  ], { fetch: counting.fetch });
  await pullThrough(mirror.client, "library/nginx", "1.27", pushed, "?ns=docker.io");
  const before = counting.sent.length;
  await pullThrough(mirror.client, "nginx", "1.27", pushed); // docker: default upstream, library/
  await pullThrough(mirror.client, "hub/nginx", "1.27", pushed); // podman: path prefix
  assertEquals(counting.sent.length, before, "one cache, whatever the route");
  assertError(
    await mirror.client.get("/v2/library/nginx/manifests/1.27?ns=quay.io"),
    404,
    "NAME_UNKNOWN",
  );
  assertEquals(counting.sent.length, before, "an unknown ns sends nothing upstream");
  // A local push shadows the default upstream for its name.
  const local = await pushBuiltImage(mirror.client, "library/mine", "v1", image(18));
  await pullThrough(mirror.client, "library/mine", "v1", local);
  assertEquals(counting.count("GET", /\/v2\/library\/mine\//), 0);
});

Deno.test("mirror: the access policy sees the store's name, however the client came", async () => {
  await using upstream = await withServer("memory");
  const pushed = await pushBuiltImage(upstream.client, "library/nginx", "1", image(19));
  await using mirror = await authServer({
    mode: "basic",
    users: { alice: "pw" },
    policy: {
      rules: [
        { users: ["anonymous"], repositories: ["hub/**"], actions: ["pull"] },
        { users: ["alice"], repositories: ["**"], actions: ["*"] },
      ],
    },
  });
  // authServer has no mirror option: a second server on the same auth, with the mirror.
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver: createMemoryDriver(),
    auth: mirror.auth,
    mirror: { upstreams: [upstreamAt("hub", upstream.url, { namespaces: ["docker.io"] })] },
  });
  try {
    const anonymous = registryClient(server.url);
    await pullThrough(anonymous, "library/nginx", "1", pushed, "?ns=docker.io");
    await pullThrough(anonymous, "hub/library/nginx", "1", pushed);
    assertError(await anonymous.get("/v2/team/app/manifests/1"), 401, "UNAUTHORIZED");
    const alice = registryClient(server.url, basic("alice", "pw"));
    assertError(await alice.pushBlob("hub/library/nginx", randomBytes(5, 5)), 405, "UNSUPPORTED");
  } finally {
    await server.shutdown(2000);
  }
});

Deno.test("mirror: a blob another repository brought is linked once the upstream vouches for it", async () => {
  await using upstream = await withServer("memory");
  const shared = randomBytes(2_000_000, 20);
  const a = await pushBuiltImage(upstream.client, "lib/a", "v1", buildImage([shared], 21));
  const b = await pushBuiltImage(upstream.client, "lib/b", "v1", buildImage([shared], 22));
  const counting = countingFetch();
  await using mirror = await startMirror([upstreamAt("up", upstream.url)], {
    fetch: counting.fetch,
  });
  await pullThrough(mirror.client, "up/lib/a", "v1", a);
  await pullThrough(mirror.client, "up/lib/b", "v1", b);
  assertEquals(
    counting.count("GET", `/v2/lib/b/blobs/${digest(shared)}`),
    0,
    "not downloaded twice",
  );
  assertEquals(counting.count("HEAD", `/v2/lib/b/blobs/${digest(shared)}`), 1, "but vouched for");
  // Never linked without the upstream's word: a name the upstream lacks cannot read it.
  assertError(
    await mirror.client.get(`/v2/up/lib/none/blobs/${digest(shared)}`),
    404,
    "BLOB_UNKNOWN",
  );
});

Deno.test("mirror: an upstream that dies mid-blob leaves nothing behind, and the next pull starts over", async () => {
  const layer = randomBytes(3_000_000, 30);
  const d = digest(layer);
  let dying = true;
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const headers = { "content-length": String(layer.length), "docker-content-digest": d };
    if (request.method === "HEAD") return new Response(null, { headers });
    let sent = false;
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (!dying) {
            controller.enqueue(layer);
            controller.close();
          } else if (!sent) {
            sent = true;
            controller.enqueue(layer.subarray(0, 1_000_000));
          } else controller.close(); // short of Content-Length: the connection breaks
        },
      }),
      { headers },
    );
  });
  await using dir = await tempDir();
  await using mirror = await startMirror(
    [upstreamAt("up", `http://127.0.0.1:${upstream.addr.port}`)],
    {},
    { driver: createFsDriver(dir.path) },
  );
  try {
    const broken = await fetchDigest(`${mirror.url}/v2/up/lib/app/blobs/${d}`).catch((e) => e);
    assert(broken instanceof Error, `the client's body broke off: ${JSON.stringify(broken)}`);
    const stored = `${dir.path}/blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}`;
    assertEquals(await Deno.stat(stored).then(() => true, () => false), false, "no blob");
    const staged = await Array.fromAsync(Deno.readDir(`${dir.path}/.tmp`)).catch(() => []);
    assertEquals(staged, [], "no staged leftovers");
    dying = false;
    assertEquals(await fetchDigest(`${mirror.url}/v2/up/lib/app/blobs/${d}`), {
      status: 200,
      digest: d,
    });
  } finally {
    await upstream.shutdown();
  }
});

Deno.test({
  name: "mirror: on S3 storage a miss streams into the bucket and the next pull is served from it",
  ignore: S3_IGNORE,
  async fn() {
    await using upstream = await withServer("memory");
    const pushed = await pushBuiltImage(upstream.client, "lib/app", "v1", image(40, 9_000_000));
    await using s3 = s3Fixture();
    const counting = countingFetch();
    await using mirror = await startMirror([upstreamAt("up", upstream.url)], {
      fetch: counting.fetch,
    }, { driver: s3.driver });
    await pullThrough(mirror.client, "up/lib/app", "v1", pushed);
    const before = counting.sent.length;
    await pullThrough(mirror.client, "up/lib/app", "v1", pushed);
    assertEquals(counting.sent.length, before, "served from the bucket");
  },
});
