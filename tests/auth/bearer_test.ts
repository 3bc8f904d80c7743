// End-to-end tests of Bearer mode over HTTP (src/auth/bearer.ts): challenges, invalid, expired and
// insufficient tokens, the catalog grant, an external token server's JWKS.

import * as jose from "jose";
import {
  assert,
  assertEquals,
  assertError,
  assertMatch,
  pushImage,
  rawRequest,
  type Res,
  tempDir,
} from "../helpers.ts";
import { createAuth } from "../../src/auth/auth.ts";
import { startServer } from "../../src/server.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { authServer, basic, bearer, fetchToken, TOKEN_POLICY, TOKEN_USERS } from "./fixtures.ts";

const USERS = TOKEN_USERS;
const POLICY = TOKEN_POLICY;
Deno.test("token: challenges name realm, service and scope", async () => {
  await using s = await authServer({
    mode: "token",
    users: USERS,
    policy: POLICY,
    trustedProxies: ["127.0.0.1"],
  });
  const realm = `${s.url}/auth/token`;
  const base = await s.client().get("/v2/");
  assertError(base, 401, "UNAUTHORIZED");
  assertEquals(
    base.headers.get("www-authenticate"),
    `Bearer realm="${realm}",service="simple-registry"`,
  );
  const pull = await s.client().get("/v2/team/app/manifests/v1");
  assertEquals(
    pull.headers.get("www-authenticate"),
    `Bearer realm="${realm}",service="simple-registry",scope="repository:team/app:pull"`,
  );
  const push = await s.client().request("POST", "/v2/team/app/blobs/uploads/");
  assertMatch(push.headers.get("www-authenticate"), /scope="repository:team\/app:pull,push"$/);
  const catalog = await s.client().get("/v2/_catalog");
  assertMatch(catalog.headers.get("www-authenticate"), /scope="registry:catalog:\*"$/);
  const proxied = await s.client({
    "x-forwarded-proto": "https",
    "x-forwarded-host": "reg.example",
  })
    .get("/v2/");
  assertMatch(
    proxied.headers.get("www-authenticate"),
    /realm="https:\/\/reg\.example\/auth\/token"/,
  );
  assertError(await s.client(basic("alice", "alice-pw")).get("/v2/"), 401, "UNAUTHORIZED");
});

Deno.test("token: the realm is never built from a client's words, nor from an invalid host", async () => {
  const evil = { "x-forwarded-proto": "https", "x-forwarded-host": 'evil.example"' };
  const realmOf = (res: Res) =>
    /^Bearer realm="((?:[^"\\]|\\.)*)",/.exec(res.headers.get("www-authenticate") ?? "")?.[1];
  {
    // Not a trusted proxy: X-Forwarded-* are ignored altogether.
    await using s = await authServer({
      mode: "token",
      users: USERS,
      trustedProxies: ["10.0.0.0/8"],
    });
    const res = await s.client({ ...evil, "x-forwarded-host": "evil.example" }).get("/v2/");
    assertEquals(realmOf(res), `${s.url}/auth/token`);
  }
  await using s = await authServer({ mode: "token", users: USERS, trustedProxies: ["127.0.0.1"] });
  // A trusted proxy forwarding an invalid host: the Host header is used instead.
  const res = await s.client(evil).get("/v2/");
  assertEquals(realmOf(res), `${s.url.replace("http:", "https:")}/auth/token`);
  // An invalid Host header itself: 400, no challenge at all.
  const raw = await rawRequest(s.url, "GET", "/v2/", "", 'evil.example"');
  assertEquals(raw.status, 400, raw.head);
  assert(!/www-authenticate/i.test(raw.head), raw.head);
});

Deno.test("token: challenge parameters are quoted-strings, escaped", async () => {
  await using external = await externalTokenServer('https://auth.example/a"b\\c', "i", 'svc"x');
  const { server } = external;
  const res = await fetch(`${server.url}/v2/`);
  await res.body?.cancel();
  assertEquals(
    res.headers.get("www-authenticate"),
    'Bearer realm="https://auth.example/a\\"b\\\\c",service="svc\\"x"',
  );
});

Deno.test("token: expired, malformed and foreign tokens are invalid_token", async () => {
  await using s = await authServer({ mode: "token", users: USERS, policy: POLICY });
  const access = [{ type: "repository", name: "team/app", actions: ["pull"] }];
  const expired = await s.auth.issuer!.issue("alice", access, -30);
  const other = await authServer({ mode: "token", users: USERS });
  const foreign = await other.auth.issuer!.issue("alice", access);
  await other[Symbol.asyncDispose]();
  for (const token of [expired.token, "not.a.token", foreign.token]) {
    const res = await s.client(bearer(token)).get("/v2/team/app/tags/list");
    assertError(res, 401, "UNAUTHORIZED");
    assertEquals(
      res.headers.get("www-authenticate"),
      `Bearer realm="${s.url}/auth/token",service="simple-registry",scope="repository:team/app:pull",error="invalid_token"`,
    );
  }
  const valid = await s.auth.issuer!.issue("alice", access);
  assertError(
    await s.client(bearer(valid.token)).get("/v2/team/app/tags/list"),
    404,
    "NAME_UNKNOWN",
  );
});

Deno.test("token: catalog needs registry:catalog:* and lists only pullable repositories", async () => {
  await using s = await authServer({ mode: "token", users: USERS, policy: POLICY });
  const alice = s.client(
    bearer(
      await fetchToken(s.url, ["repository:team/app:push", "repository:zz/top:push"], [
        "alice",
        "alice-pw",
      ]),
    ),
  );
  await pushImage(alice, "team/app", "v1");
  await pushImage(alice, "zz/top", "v1");
  const bobNoCatalog = s.client(
    bearer(await fetchToken(s.url, ["repository:team/app:pull"], ["bob", "bob-pw"])),
  );
  const refused = await bobNoCatalog.get("/v2/_catalog");
  assertError(refused, 401, "UNAUTHORIZED");
  assertMatch(refused.headers.get("www-authenticate"), /insufficient_scope/);
  const bob = s.client(bearer(await fetchToken(s.url, ["registry:catalog:*"], ["bob", "bob-pw"])));
  assertEquals((await bob.get("/v2/_catalog")).json().repositories, ["team/app"]);
  const aliceCatalog = s.client(
    bearer(await fetchToken(s.url, ["registry:catalog:*"], ["alice", "alice-pw"])),
  );
  assertEquals((await aliceCatalog.get("/v2/_catalog")).json().repositories, [
    "team/app",
    "zz/top",
  ]);
});

Deno.test("token: external token server — JWKS file, issuer and service checked offline", async () => {
  await using external = await externalTokenServer(
    "https://auth.example/token",
    "ext-issuer",
    "ext-registry",
  );
  const { server, privateKey } = external;
  const sign = (claims: jose.JWTPayload, iss = "ext-issuer", aud = "ext-registry") =>
    new jose.SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "ext" }).setIssuer(iss)
      .setAudience(aud).setSubject("carol").setExpirationTime("2m").sign(privateKey);
  const get = async (path: string, token?: string) => {
    const res = await fetch(server.url + path, { headers: token ? bearer(token) : {} });
    await res.body?.cancel();
    return res;
  };
  const challenge = (await get("/v2/")).headers.get("www-authenticate");
  assertEquals(challenge, `Bearer realm="https://auth.example/token",service="ext-registry"`);
  const good = await sign({ access: [{ type: "repository", name: "a/b", actions: ["pull"] }] });
  assertEquals((await get("/v2/a/b/tags/list", good)).status, 404, "allowed: NAME_UNKNOWN");
  assertEquals((await get("/v2/a/c/tags/list", good)).status, 401);
  assertEquals((await get("/v2/a/b/tags/list", await sign({}, "other"))).status, 401);
  assertEquals((await get("/v2/a/b/tags/list", await sign({}, "ext-issuer", "x"))).status, 401);
  assertEquals((await get("/auth/token")).status, 404, "no built-in token server");
});

/** A registry behind an external token server whose JWKS file holds one ES256 key, `ext`. */
async function externalTokenServer(realm: string, issuer: string, service: string) {
  const dir = await tempDir();
  const { privateKey, publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  await Deno.writeTextFile(
    `${dir.path}/jwks.json`,
    JSON.stringify({ keys: [{ ...await jose.exportJWK(publicKey), kid: "ext", alg: "ES256" }] }),
  );
  const auth = await createAuth({
    auth: "token",
    tokenRealm: realm,
    tokenIssuer: issuer,
    tokenService: service,
    tokenJwks: `${dir.path}/jwks.json`,
  });
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver: createMemoryDriver(),
    auth,
  });
  return {
    server,
    privateKey,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await dir[Symbol.asyncDispose]();
    },
  };
}
