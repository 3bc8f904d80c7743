// End-to-end tests of the built-in token server over HTTP (src/auth/token_server.ts): GET and
// OAuth2 POST /auth/token, partial grants, wrong passwords, the anonymous grant, refresh tokens.

import * as jose from "jose";
import {
  assert,
  assertEquals,
  assertError,
  assertMatch,
  digest,
  pushImage,
  randomBytes,
} from "../helpers.ts";
import { authServer, basic, bearer, fetchToken, TOKEN_POLICY, TOKEN_USERS } from "./fixtures.ts";

const USERS = TOKEN_USERS;
const POLICY = TOKEN_POLICY;
Deno.test("token: GET /auth/token grants what the policy allows; push and pull with it", async () => {
  await using s = await authServer({ mode: "token", users: USERS, policy: POLICY });
  const response = await fetch(
    `${s.url}/auth/token?service=simple-registry&scope=repository:team/app:pull,push&scope=repository:other:pull`,
    { headers: basic("bob", "bob-pw") },
  );
  const body = await response.json();
  assertEquals(response.status, 200);
  assertEquals(body.token, body.access_token);
  assert(body.expires_in >= 60);
  assertMatch(body.issued_at, /^\d{4}-\d\d-\d\dT/);
  assertEquals(body.refresh_token, undefined);
  const claims = jose.decodeJwt(body.token);
  assertEquals(claims.sub, "bob");
  assertEquals(claims.access, [{ type: "repository", name: "team/app", actions: ["pull"] }]);

  const aliceToken = await fetchToken(s.url, ["repository:team/app:pull,push"], [
    "alice",
    "alice-pw",
  ]);
  const alice = s.client(bearer(aliceToken));
  assertEquals((await alice.get("/v2/")).status, 200);
  const image = await pushImage(alice, "team/app", "v1");

  const bob = s.client(bearer(body.token));
  assertEquals((await bob.get("/v2/team/app/manifests/v1")).status, 200);
  const denied = await bob.pushBlob("team/app", randomBytes(5));
  assertError(denied, 401, "UNAUTHORIZED");
  assertMatch(denied.headers.get("www-authenticate"), /,error="insufficient_scope"$/);
  assertError(await bob.get(`/v2/team/other/blobs/${digest(image.config)}`), 401, "UNAUTHORIZED");
  assertError(await alice.get("/v2/public/x/tags/list"), 401, "UNAUTHORIZED", "not in the token");
});

Deno.test("token: wrong password refused; anonymous gets the anonymous grant", async () => {
  await using s = await authServer({ mode: "token", users: USERS, policy: POLICY });
  const wrong = await fetch(`${s.url}/auth/token?scope=repository:team/app:pull`, {
    headers: basic("alice", "nope"),
  });
  assertEquals(wrong.status, 401);
  assertMatch(wrong.headers.get("www-authenticate"), /^Basic /);
  await wrong.body?.cancel();

  const alice = s.client(
    bearer(await fetchToken(s.url, ["repository:public/x:push"], ["alice", "alice-pw"])),
  );
  await pushImage(alice, "public/x", "v1");
  const anonymousToken = await fetchToken(s.url, [
    "repository:public/x:pull,push",
    "repository:team/app:pull",
  ]);
  const claims = jose.decodeJwt(anonymousToken);
  assertEquals(claims.sub, "");
  assertEquals(claims.access, [{ type: "repository", name: "public/x", actions: ["pull"] }]);
  const anonymous = s.client(bearer(anonymousToken));
  assertEquals((await anonymous.get("/v2/public/x/manifests/v1")).status, 200);
  const push = await anonymous.pushBlob("public/x", randomBytes(3));
  assertError(push, 401, "UNAUTHORIZED");
  assertMatch(push.headers.get("www-authenticate"), /insufficient_scope/);
  const nothing = await fetchToken(s.url, ["repository:team/app:pull"]);
  assertEquals(jose.decodeJwt(nothing).access, []);
  const service = await fetch(`${s.url}/auth/token?service=elsewhere`);
  assertEquals(service.status, 400);
  await service.body?.cancel();
});

Deno.test("token: OAuth2 POST with password and refresh_token grants", async () => {
  await using s = await authServer({ mode: "token", users: USERS, policy: POLICY });
  const post = (form: Record<string, string>) =>
    fetch(`${s.url}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  const first = await post({
    grant_type: "password",
    service: "simple-registry",
    client_id: "docker",
    access_type: "offline",
    scope: "repository:team/app:pull repository:x:push",
    username: "bob",
    password: "bob-pw",
  });
  const body = await first.json();
  assertEquals(first.status, 200, JSON.stringify(body));
  assertEquals(body.scope, "repository:team/app:pull");
  assert(typeof body.refresh_token === "string");
  assertError(await s.client(bearer(body.refresh_token)).get("/v2/"), 401, "UNAUTHORIZED");

  const refreshed = await post({
    grant_type: "refresh_token",
    service: "simple-registry",
    client_id: "docker",
    refresh_token: body.refresh_token,
    scope: "repository:team/app:pull",
  });
  const again = await refreshed.json();
  assertEquals(refreshed.status, 200, JSON.stringify(again));
  assertEquals(jose.decodeJwt(again.access_token).sub, "bob");

  const bad = await post({
    grant_type: "password",
    username: "bob",
    password: "x",
    client_id: "c",
  });
  assertEquals(bad.status, 401);
  await bad.body?.cancel();
  const forged = await post({ grant_type: "refresh_token", refresh_token: again.access_token });
  assertEquals(forged.status, 401);
  await forged.body?.cancel();
  const odd = await post({ grant_type: "client_credentials" });
  assertEquals(odd.status, 400);
  await odd.body?.cancel();
});
