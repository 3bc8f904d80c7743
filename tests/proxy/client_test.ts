// Unit tests of src/proxy/client.ts against a scripted fetch: the token dance (anonymous and with
// credentials, cached per repository until it expires), Basic, redirects, Accept, failures.

import {
  createUpstreamClient,
  MANIFEST_ACCEPT,
  parseChallenge,
  UpstreamError,
} from "../../src/proxy/client.ts";
import { parseProxyFlag, type Upstream } from "../../src/proxy/config.ts";
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from "../../src/oci/manifest.ts";
import { assert, assertEquals, assertRejects } from "../helpers.ts";

interface Sent {
  url: string;
  method: string;
  headers: Headers;
}

/** A fetch that records requests and answers from `answer`. */
function scripted(answer: (request: Sent) => Response | Promise<Response>) {
  const sent: Sent[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const request = {
      url: String(input),
      method: init?.method ?? "GET",
      headers: new Headers(init?.headers),
    };
    sent.push(request);
    return await answer(request);
  }) as typeof fetch;
  return { sent, fetch: fetchFn };
}

const upstream = (extra: Partial<Upstream> = {}): Upstream => ({
  ...parseProxyFlag("hub=https://registry.test"),
  ...extra,
});

const bearerChallenge = (scope: string) =>
  new Response(null, {
    status: 401,
    headers: {
      "www-authenticate":
        `Bearer realm="https://auth.test/token",service="registry.test",scope="${scope}"`,
    },
  });

/** A registry wanting `Bearer tok-<n>` tokens, and its token server. */
function tokenRegistry(options: { expiresIn?: number; field?: "token" | "access_token" } = {}) {
  let issued = 0;
  const valid = new Set<string>();
  return scripted((request) => {
    const url = new URL(request.url);
    if (url.host === "auth.test") {
      const token = `tok-${++issued}`;
      valid.add(token);
      return Response.json({
        [options.field ?? "token"]: token,
        ...(options.expiresIn !== undefined && { expires_in: options.expiresIn }),
      });
    }
    const auth = request.headers.get("authorization") ?? "";
    const name = url.pathname.split("/").slice(2, -2).join("/");
    if (!valid.has(auth.replace(/^Bearer /, ""))) {
      return bearerChallenge(`repository:${name}:pull`);
    }
    return new Response("{}", { status: 200 });
  });
}

Deno.test("client: the token dance, anonymous; a token per repository, reused until it expires", async () => {
  let now = 1_000_000;
  const registry = tokenRegistry({ expiresIn: 300 });
  const client = createUpstreamClient(upstream(), { fetch: registry.fetch, now: () => now });
  const first = await client.request("library/nginx", "library/nginx/manifests/1.27");
  assertEquals(first.status, 200);
  await first.body?.cancel();
  assertEquals(registry.sent.map((r) => `${r.method} ${r.url}`), [
    "GET https://registry.test/v2/library/nginx/manifests/1.27",
    "GET https://auth.test/token?service=registry.test&scope=repository%3Alibrary%2Fnginx%3Apull",
    "GET https://registry.test/v2/library/nginx/manifests/1.27",
  ]);
  assertEquals(registry.sent[1].headers.get("authorization"), null, "anonymous");
  assertEquals(registry.sent[2].headers.get("authorization"), "Bearer tok-1");

  // Cached: no 401, no token request.
  registry.sent.length = 0;
  await (await client.request("library/nginx", "library/nginx/blobs/sha256:x")).body?.cancel();
  assertEquals(registry.sent.length, 1);
  assertEquals(registry.sent[0].headers.get("authorization"), "Bearer tok-1");

  // Another repository: the token server is known, so its token is asked for up front.
  registry.sent.length = 0;
  await (await client.request("library/redis", "library/redis/manifests/7")).body?.cancel();
  assertEquals(registry.sent.map((r) => new URL(r.url).host), ["auth.test", "registry.test"]);

  // Expired (300 s, renewed a little early): a new token.
  now += 300_000;
  registry.sent.length = 0;
  await (await client.request("library/nginx", "library/nginx/manifests/1.27")).body?.cancel();
  assertEquals(registry.sent.map((r) => new URL(r.url).host), ["auth.test", "registry.test"]);
  assertEquals(registry.sent[1].headers.get("authorization"), "Bearer tok-3");
});

Deno.test("client: token with credentials; access_token; default lifetime 60 s", async () => {
  let now = 0;
  const registry = tokenRegistry({ field: "access_token" });
  const client = createUpstreamClient(
    upstream({ username: "bot", password: "pw" }),
    { fetch: registry.fetch, now: () => now },
  );
  await (await client.request("team/app", "team/app/manifests/v1")).body?.cancel();
  const tokenRequest = registry.sent.find((r) => r.url.startsWith("https://auth.test/"))!;
  assertEquals(tokenRequest.headers.get("authorization"), `Basic ${btoa("bot:pw")}`);
  assertEquals(registry.sent.at(-1)!.headers.get("authorization"), "Bearer tok-1");
  now += 45_000;
  registry.sent.length = 0;
  await (await client.request("team/app", "team/app/manifests/v1")).body?.cancel();
  assertEquals(registry.sent.length, 1, "still valid at 45 s");
  now += 20_000;
  registry.sent.length = 0;
  await (await client.request("team/app", "team/app/manifests/v1")).body?.cancel();
  assertEquals(registry.sent.length, 2, "renewed after 60 s");
});

Deno.test("client: concurrent requests of one repository share one token request", async () => {
  const registry = tokenRegistry();
  const client = createUpstreamClient(upstream(), { fetch: registry.fetch });
  // Learn the token server first, so all ten ask for a token up front.
  await (await client.request("a/b", "a/b/manifests/x")).body?.cancel();
  registry.sent.length = 0;
  const responses = await Promise.all(
    Array.from({ length: 10 }, () => client.request("c/d", "c/d/manifests/x")),
  );
  await Promise.all(responses.map((r) => r.body?.cancel()));
  assertEquals(registry.sent.filter((r) => r.url.startsWith("https://auth.test/")).length, 1);
});

Deno.test("client: a token that does not grant access is DENIED, not retried forever", async () => {
  const fetched = scripted((request) =>
    request.url.startsWith("https://auth.test/")
      ? Response.json({ token: "useless" })
      : bearerChallenge("repository:private/x:pull")
  );
  const client = createUpstreamClient(upstream(), { fetch: fetched.fetch });
  const error = await assertRejects(() => client.request("private/x", "private/x/manifests/1"));
  assert(error instanceof UpstreamError);
  assertEquals(error.kind, "denied");
  assertEquals(fetched.sent.length, 3);
});

Deno.test("client: a refused token request is DENIED; a broken one FAILED", async () => {
  for (const [status, kind] of [[401, "denied"], [500, "failed"], [429, "rate-limited"]] as const) {
    const fetched = scripted((request) =>
      request.url.startsWith("https://auth.test/")
        ? new Response("no", { status })
        : bearerChallenge("repository:x/y:pull")
    );
    const client = createUpstreamClient(upstream({ username: "u", password: "bad" }), {
      fetch: fetched.fetch,
    });
    const error = await assertRejects(() => client.request("x/y", "x/y/manifests/1"));
    assertEquals((error as UpstreamError).kind, kind, `token server ${status}`);
  }
});

Deno.test("client: Basic, once challenged, goes with every request", async () => {
  const expected = `Basic ${btoa("bob:pw")}`;
  const fetched = scripted((request) =>
    request.headers.get("authorization") === expected
      ? new Response("{}")
      : new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } })
  );
  const client = createUpstreamClient(upstream({ username: "bob", password: "pw" }), {
    fetch: fetched.fetch,
  });
  await (await client.request("a/b", "a/b/manifests/1")).body?.cancel();
  await (await client.request("c/d", "c/d/manifests/1")).body?.cancel();
  assertEquals(fetched.sent.map((r) => r.headers.get("authorization")), [null, expected, expected]);

  // Without credentials a Basic challenge is DENIED.
  const anonymous = createUpstreamClient(upstream(), { fetch: fetched.fetch });
  const error = await assertRejects(() => anonymous.request("a/b", "a/b/manifests/1"));
  assertEquals((error as UpstreamError).kind, "denied");
});

Deno.test("client: redirects to blob storage are followed without our Authorization", async () => {
  const fetched = scripted((request) => {
    const url = new URL(request.url);
    if (url.host === "cdn.test") return new Response("layer bytes");
    if (url.pathname.endsWith("/moved")) {
      return new Response(null, { status: 302, headers: { location: "/v2/a/b/blobs/here" } });
    }
    if (url.pathname.endsWith("/here")) {
      return new Response(null, {
        status: 307,
        headers: { location: "https://cdn.test/signed?X-Amz-Signature=abc" },
      });
    }
    return new Response(null, { status: 500 });
  });
  const client = createUpstreamClient(upstream({ username: "u", password: "p" }), {
    fetch: fetched.fetch,
  });
  const response = await client.request("a/b", "a/b/blobs/moved");
  assertEquals(await response.text(), "layer bytes");
  assertEquals(fetched.sent.map((r) => r.url), [
    "https://registry.test/v2/a/b/blobs/moved",
    "https://registry.test/v2/a/b/blobs/here",
    "https://cdn.test/signed?X-Amz-Signature=abc",
  ]);
  assertEquals(fetched.sent[2].headers.get("authorization"), null);
});

Deno.test("client: Authorization reaches the upstream's own redirects only", async () => {
  const registry = scripted((request) => {
    const url = new URL(request.url);
    if (url.host === "auth.test") return Response.json({ token: "t" });
    if (url.host === "cdn.test") return new Response("bytes");
    if (request.headers.get("authorization") !== "Bearer t") {
      return bearerChallenge("repository:a/b:pull");
    }
    if (url.pathname.endsWith("/one")) {
      return new Response(null, { status: 307, headers: { location: "/v2/a/b/blobs/two" } });
    }
    return new Response(null, { status: 307, headers: { location: "https://cdn.test/x" } });
  });
  const client = createUpstreamClient(upstream(), { fetch: registry.fetch });
  assertEquals(await (await client.request("a/b", "a/b/blobs/one")).text(), "bytes");
  const hops = registry.sent.slice(-3);
  assertEquals(hops.map((r) => r.url), [
    "https://registry.test/v2/a/b/blobs/one",
    "https://registry.test/v2/a/b/blobs/two",
    "https://cdn.test/x",
  ]);
  assertEquals(hops.map((r) => r.headers.get("authorization")), ["Bearer t", "Bearer t", null]);
});

Deno.test("client: endless redirects fail", async () => {
  const loop = scripted(() =>
    new Response(null, { status: 302, headers: { location: "https://registry.test/v2/x" } })
  );
  const client = createUpstreamClient(upstream(), { fetch: loop.fetch });
  const error = await assertRejects(() => client.request("a/b", "a/b/blobs/x"));
  assertEquals((error as UpstreamError).kind, "failed");
  assert(loop.sent.length <= 6, `${loop.sent.length} requests`);
});

Deno.test("client: failures are typed (unreachable, rate-limited with Retry-After, failed)", async () => {
  const down = createUpstreamClient(upstream(), {
    fetch: () => Promise.reject(new TypeError("connection refused")),
  });
  const unreachable = await assertRejects(() => down.request("a/b", "a/b/manifests/1"));
  assertEquals((unreachable as UpstreamError).kind, "unreachable");
  assert(unreachable.message.includes("registry.test is unreachable"), unreachable.message);

  const limited = createUpstreamClient(upstream(), {
    fetch: scripted(() =>
      new Response("slow down", { status: 429, headers: { "retry-after": "42" } })
    )
      .fetch,
  });
  const error = await assertRejects(() => limited.request("a/b", "a/b/manifests/1"));
  assertEquals((error as UpstreamError).kind, "rate-limited");
  assertEquals((error as UpstreamError).retryAfter, "42");

  const broken = createUpstreamClient(upstream(), {
    fetch: scripted(() => new Response("oops", { status: 503 })).fetch,
  });
  assertEquals(
    ((await assertRejects(() => broken.request("a/b", "a/b/manifests/1"))) as UpstreamError).kind,
    "failed",
  );

  // A 404 is an answer, for the caller to read.
  const missing = createUpstreamClient(upstream(), {
    fetch: scripted(() => new Response("{}", { status: 404 })).fetch,
  });
  assertEquals((await missing.request("a/b", "a/b/manifests/1")).status, 404);

  const silent = createUpstreamClient(upstream(), {
    fetch: (_, init) =>
      new Promise((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new Error("aborted")))
      ),
    timeout: 20,
  });
  const timeout = await assertRejects(() => silent.request("a/b", "a/b/manifests/1"));
  assertEquals((timeout as UpstreamError).kind, "unreachable");
  assert(timeout.message.includes("no answer within 20 ms"), timeout.message);
});

Deno.test("client: the manifest Accept list names every manifest type stored here", () => {
  for (const type of [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]) {
    assert(MANIFEST_ACCEPT.split(", ").includes(type), type);
  }
});

Deno.test("client: challenges parse with quotes, commas and bare values", () => {
  assertEquals(
    parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push",error=insufficient_scope',
    ),
    {
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/nginx:pull,push",
        error: "insufficient_scope",
      },
    },
  );
  assertEquals(parseChallenge('Basic realm="Simple Registry"')?.scheme, "basic");
  assertEquals(parseChallenge(""), undefined);
});
