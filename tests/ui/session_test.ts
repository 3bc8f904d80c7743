// The web UI's sign-in with --htpasswd (Basic and token mode): the cookie's attributes, only what the
// policy lets a user pull, deletes by right and CSRF token, sign-out, and no browser Basic prompt.

import { assert, assertEquals, assertMatch, readResponse, type Res } from "../helpers.ts";
import { authServer, basic, bearer, fetchToken } from "../auth/fixtures.ts";
import { REDIS_IGNORE, REDIS_SKIP_REASON, startRedis } from "../redis_helpers.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { pushSampleImage } from "./fixtures.ts";

const USERS = { alice: "alice-pw", bob: "bob-pw" };
const POLICY = {
  groups: { admins: ["alice"] },
  rules: [
    { users: ["@admins"], repositories: ["**"], actions: ["*"] },
    { users: ["bob"], repositories: ["team/*"], actions: ["pull"] },
    { users: ["anonymous", "*"], repositories: ["public/**"], actions: ["pull"] },
    { users: ["anonymous", "*"], actions: ["catalog"] },
  ],
};
const NAMES = ["public/hello", "secret/db", "team/app"];

/** A tiny browser: keeps the session cookie and the CSRF token between calls. */
function browser(url: string) {
  let cookie = "";
  let csrf = "";
  const call = async (method: string, path: string, body?: unknown): Promise<Res> => {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (method !== "GET") headers["x-csrf-token"] = csrf;
    const res = await readResponse(
      await fetch(url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0].endsWith("=") ? "" : set.split(";")[0];
    if (path === "/ui/api/session" && res.status === 200) csrf = res.json().csrf;
    return res;
  };
  return {
    call,
    get cookie() {
      return cookie;
    },
    set cookie(value: string) {
      cookie = value;
    },
    async signIn(user: string, password: string) {
      await call("GET", "/ui/api/session");
      return call("POST", "/ui/api/session", { user, password });
    },
  };
}

const names = (res: Res) => res.json().items.map((r: { name: string }) => r.name);

for (const mode of ["basic", "token"] as const) {
  Deno.test(`ui session [${mode}]: signs in, lists what the user may pull, signs out`, async () => {
    await using s = await authServer({ mode, users: USERS, policy: POLICY });
    for (const name of NAMES) {
      const client = mode === "basic" ? s.client(basic("alice", "alice-pw")) : s.client(
        bearer(await fetchToken(s.url, [`repository:${name}:pull,push`], ["alice", "alice-pw"])),
      );
      await pushSampleImage(client, name, "1", { layers: [{ files: [] }] });
    }
    const b = browser(s.url);
    const anonymous = await b.call("GET", "/ui/api/repositories");
    assertEquals(names(anonymous), ["public/hello"], "anonymous sees the public repositories");
    const denied = await b.call("GET", "/ui/api/r/team/app/tags");
    assertEquals(denied.status, 401);
    assert(!/basic/i.test(denied.headers.get("www-authenticate") ?? ""), "no Basic prompt");

    const wrong = await b.signIn("bob", "nope");
    assertEquals(wrong.status, 401);
    assert(!/basic/i.test(wrong.headers.get("www-authenticate") ?? ""), "no Basic prompt");
    assertEquals(b.cookie, "");

    const ok = await b.signIn("bob", "bob-pw");
    assertEquals(ok.status, 200, ok.text);
    assertEquals(ok.json().user, "bob");
    const setCookie = ok.headers.get("set-cookie")!;
    assertMatch(setCookie, /HttpOnly/);
    assertMatch(setCookie, /SameSite=Strict/);
    assertMatch(setCookie, /Path=\/ui\/api/);
    assert(!setCookie.includes("bob-pw"), "no password in the cookie");
    assertEquals(names(await b.call("GET", "/ui/api/repositories")), ["public/hello", "team/app"]);
    assertEquals((await b.call("GET", "/ui/api/r/team/app/tags")).status, 200);
    assertEquals((await b.call("GET", "/ui/api/r/secret/db/tags")).status, 403);
    const storage = (await b.call("GET", "/ui/api/storage")).json();
    assertEquals(storage.repositories, 2);
    assertEquals(storage.registry, undefined, "registry-wide figures only for who sees all");
    assertEquals((await b.call("GET", "/ui/api/r/team/app/tags")).json().canDelete, false);
    await b.call("GET", "/ui/api/session");
    assertEquals((await b.call("DELETE", "/ui/api/r/team/app/manifests/1")).status, 403);

    // The cookie does nothing on the API, and API credentials still work on the UI's routes.
    const viaApi = await fetch(`${s.url}/v2/team/app/tags/list`, { headers: { cookie: b.cookie } });
    await viaApi.body?.cancel();
    assertEquals(viaApi.status, 401);

    const stolen = b.cookie;
    assertEquals((await b.call("DELETE", "/ui/api/session")).status, 200);
    assertEquals(b.cookie, "");
    b.cookie = stolen;
    assertEquals(
      names(await b.call("GET", "/ui/api/repositories")),
      ["public/hello"],
      "a signed-out session is refused even when its cookie is replayed",
    );

    const a = browser(s.url);
    assertEquals((await a.signIn("alice", "alice-pw")).status, 200);
    assertEquals(names(await a.call("GET", "/ui/api/repositories")), NAMES);
    assert((await a.call("GET", "/ui/api/storage")).json().registry, "alice sees everything");
    await a.call("GET", "/ui/api/session");
    const forged = a.cookie.replace(/^(sr_session=)[^.]+/, `$1${btoa('{"u":"alice"}')}`);
    const tampered = await fetch(`${s.url}/ui/api/r/secret/db/tags`, {
      headers: { cookie: forged },
    });
    await tampered.body?.cancel();
    assertEquals(tampered.status, 401, "a forged cookie is anonymous");
    assertEquals((await a.call("DELETE", "/ui/api/r/secret/db/manifests/1")).status, 202);
    assertEquals(names(await a.call("GET", "/ui/api/repositories")), NAMES);
    assertEquals((await a.call("GET", "/ui/api/r/secret/db/tags")).json().total, 0);
  });
}

Deno.test({
  name: "ui session: with Redis, a sign-out on one instance is refused by the other",
  ignore: REDIS_IGNORE,
  async fn() {
    await using redis = await startRedis();
    // Two instances of one registry: the same storage (so the same cookie key) and Redis.
    const shared = {
      mode: "basic" as const,
      users: USERS,
      policy: POLICY,
      driver: createMemoryDriver(),
      redis: { url: redis.url, lease: 30_000, storage: "memory:ui-sessions" },
    };
    await using one = await authServer(shared);
    await using two = await authServer(shared);
    const onOne = browser(one.url);
    assertEquals((await onOne.signIn("bob", "bob-pw")).status, 200);
    const onTwo = browser(two.url);
    onTwo.cookie = onOne.cookie;
    const user = async (b: ReturnType<typeof browser>) =>
      (await b.call("GET", "/ui/api/session")).json().user;
    assertEquals(await user(onTwo), "bob", "the other instance takes the cookie");
    assertEquals((await onOne.call("DELETE", "/ui/api/session")).status, 200);
    assertEquals(await user(onTwo), null, "signed out on one: refused on the other");

    // Redis gone: signing out still works, and holds on the instance that did it.
    const again = browser(one.url);
    assertEquals((await again.signIn("bob", "bob-pw")).status, 200);
    const stolen = again.cookie;
    await redis.kill();
    assertEquals((await again.call("DELETE", "/ui/api/session")).status, 200);
    again.cookie = stolen;
    assertEquals(await user(again), null, "refused where it signed out, with Redis down");
  },
});
if (REDIS_IGNORE) console.log(REDIS_SKIP_REASON);

Deno.test("ui session: signing in without the CSRF token, or from another origin, is refused", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, policy: POLICY });
  const post = (headers: HeadersInit) =>
    fetch(`${s.url}/ui/api/session`, {
      method: "POST",
      headers,
      body: JSON.stringify({ user: "bob", password: "bob-pw" }),
    }).then(readResponse);
  assertEquals((await post({})).status, 403);
  const { csrf } = (await readResponse(await fetch(`${s.url}/ui/api/session`))).json();
  assertEquals((await post({ "x-csrf-token": csrf, origin: "https://evil.example" })).status, 403);
  assertEquals((await post({ "x-csrf-token": csrf })).status, 200);
});
