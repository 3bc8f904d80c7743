// End-to-end tests of htpasswd Basic mode over HTTP: challenge, policy, 401/403, listings filtered,
// mount needing pull on `from`, brute-force 429, htpasswd reload without a restart.

import {
  assert,
  assertEquals,
  assertError,
  assertMatch,
  digest,
  pushImage,
  randomBytes,
} from "../helpers.ts";
import { authServer, basic, htpasswdLine } from "./fixtures.ts";

const USERS = { alice: "alice-pw", bob: "bob-pw" };
const POLICY = {
  rules: [
    { users: ["alice"], repositories: ["**"], actions: ["*"] },
    { users: ["bob"], repositories: ["team/app", "bob/**"], actions: ["pull"] },
    { users: ["bob"], repositories: ["drop/*"], actions: ["push"] },
    { users: ["anonymous"], repositories: ["public/**"], actions: ["pull"] },
    { users: ["*"], actions: ["catalog"] },
  ],
};

Deno.test("basic: /v2/ challenges; credentials checked; anonymous and empty creds are anonymous", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, policy: POLICY });
  for (const headers of [{}, basic("", "")]) {
    const res = await s.client(headers).get("/v2/");
    assertError(res, 401, "UNAUTHORIZED");
    assertEquals(res.headers.get("www-authenticate"), `Basic realm="Simple Registry"`);
    assertEquals(res.headers.get("docker-distribution-api-version"), "registry/2.0");
  }
  assertEquals((await s.client(basic("alice", "alice-pw")).get("/v2/")).status, 200);
  assertEquals((await s.client(basic("bob", "bob-pw")).get("/v2/")).status, 200);
  const wrong = await s.client(basic("alice", "nope")).get("/v2/");
  assertError(wrong, 401, "UNAUTHORIZED");
  assertMatch(wrong.headers.get("www-authenticate"), /^Basic realm=/);
  assertError(await s.client(basic("mallory", "x")).get("/v2/"), 401, "UNAUTHORIZED");
  assertError(await s.client({ authorization: "Bearer abc" }).get("/v2/"), 401, "UNAUTHORIZED");
});

Deno.test("basic: the policy decides — 403 DENIED for users, 401 for anonymous", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, policy: POLICY });
  const alice = s.client(basic("alice", "alice-pw"));
  const bob = s.client(basic("bob", "bob-pw"));
  const anonymous = s.client();
  const image = await pushImage(alice, "team/app", "v1");
  await pushImage(alice, "public/base", "v1");
  await pushImage(alice, "secret/x", "v1");

  assertEquals((await bob.get("/v2/team/app/manifests/v1")).status, 200);
  assertEquals((await bob.get(`/v2/team/app/blobs/${digest(image.config)}`)).status, 200);
  const push = await bob.pushBlob("team/app", randomBytes(10));
  assertError(push, 403, "DENIED");
  assertEquals(push.json().errors[0].detail, [{
    Type: "repository",
    Name: "team/app",
    Action: "push",
  }]);
  assertError(await bob.get("/v2/secret/x/manifests/v1"), 403, "DENIED");
  assertError(await bob.request("DELETE", `/v2/team/app/manifests/${image.digest}`), 403, "DENIED");
  assertEquals((await bob.pushBlob("drop/box", randomBytes(10))).status, 201, "push-only repo");
  assertError(await bob.get("/v2/drop/box/tags/list"), 403, "DENIED");

  assertEquals((await anonymous.get("/v2/public/base/manifests/v1")).status, 200);
  assertEquals((await anonymous.head("/v2/public/base/manifests/v1")).status, 200);
  const anonPush = await anonymous.pushBlob("public/base", randomBytes(10));
  assertError(anonPush, 401, "UNAUTHORIZED");
  assertMatch(anonPush.headers.get("www-authenticate"), /^Basic /);
  assertError(await anonymous.get("/v2/team/app/manifests/v1"), 401, "UNAUTHORIZED");
  assertError(await anonymous.get("/v2/_catalog"), 401, "UNAUTHORIZED");
  const head = await anonymous.head("/v2/team/app/manifests/v1");
  assertEquals([head.status, head.body.length], [401, 0]);
  assertError(await anonymous.get("/v2/../etc/manifests/x"), 404, "UNSUPPORTED");
});

Deno.test("basic: catalog and /v2/tags/list list only what the caller may pull", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, policy: POLICY });
  const alice = s.client(basic("alice", "alice-pw"));
  const bob = s.client(basic("bob", "bob-pw"));
  for (const name of ["a/one", "bob/two", "public/three", "team/app", "z/four"]) {
    await pushImage(alice, name, "v1");
  }
  assertEquals((await alice.get("/v2/_catalog")).json().repositories, [
    "a/one",
    "bob/two",
    "public/three",
    "team/app",
    "z/four",
  ]);
  assertEquals((await bob.get("/v2/_catalog")).json().repositories, ["bob/two", "team/app"]);
  const page = await bob.get("/v2/_catalog?n=1");
  assertEquals(page.json().repositories, ["bob/two"]);
  assertMatch(page.headers.get("link"), /last=bob%2Ftwo/);
  assertEquals((await bob.get("/v2/_catalog?n=1&last=bob/two")).json().repositories, ["team/app"]);
  assertEquals(
    (await bob.get("/v2/tags/list")).json().repositories.map((r: { name: string }) => r.name),
    ["bob/two", "team/app"],
  );
});

Deno.test("basic: a mount needs pull on `from`, else it is a normal upload (202)", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, policy: POLICY });
  const alice = s.client(basic("alice", "alice-pw"));
  const bob = s.client(basic("bob", "bob-pw"));
  const blob = randomBytes(100, 7);
  assertEquals((await alice.pushBlob("team/app", blob)).status, 201);
  assertEquals((await alice.pushBlob("secret/x", randomBytes(50, 8))).status, 201);
  const d = digest(blob);
  const allowed = await bob.request("POST", `/v2/drop/a/blobs/uploads/?mount=${d}&from=team/app`);
  assertEquals(allowed.status, 201, allowed.text);
  const secret = digest(randomBytes(50, 8));
  const refused = await bob.request(
    "POST",
    `/v2/drop/b/blobs/uploads/?mount=${secret}&from=secret/x`,
  );
  assertEquals(refused.status, 202, "falls back to an upload session");
  const automatic = await bob.request("POST", `/v2/drop/b/blobs/uploads/?mount=${secret}`);
  assertEquals(automatic.status, 202, "no automatic mount with auth on");
  assertEquals((await alice.head(`/v2/drop/b/blobs/${secret}`)).status, 404);
});

Deno.test("basic: failed logins are slowed, then 429 with Retry-After, per user", async () => {
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: {
      limits: { freeFailures: 1, maxFailures: 4, baseDelayMs: 150, blockMs: 30_000 },
    },
  });
  // The first check starts the bcrypt worker: not part of what is timed.
  assertEquals((await s.client(basic("bob", "bob-pw")).get("/v2/")).status, 200);
  const wrong = s.client(basic("alice", "wrong"));
  const times: number[] = [];
  for (let i = 0; i < 4; i++) {
    const start = performance.now();
    assertError(await wrong.get("/v2/"), 401, "UNAUTHORIZED");
    times.push(performance.now() - start);
  }
  // A lower bound only: a busy machine adds time, it never takes the delay away.
  assert(times[2] >= 140, `slowed: ${times.map(Math.round)}`);
  const blocked = await s.client(basic("alice", "alice-pw")).get("/v2/");
  assertError(blocked, 429, "TOOMANYREQUESTS");
  const retry = Number(blocked.headers.get("retry-after"));
  assert(retry > 25 && retry <= 30, `Retry-After ${retry}`);
  assertEquals((await s.client(basic("bob", "bob-pw")).get("/v2/")).status, 200, "bob unaffected");
});

Deno.test("basic: an htpasswd change applies without a restart", async () => {
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { htpasswd: { recheckMs: 0 } },
  });
  assertEquals((await s.client(basic("carol", "c")).get("/v2/")).status, 401);
  await Deno.writeTextFile(s.htpasswdPath, htpasswdLine("carol", "c") + "\n");
  assertEquals((await s.client(basic("carol", "c")).get("/v2/")).status, 200);
  assertEquals((await s.client(basic("alice", "alice-pw")).get("/v2/")).status, 401, "removed");
});

Deno.test("basic: without a policy every user may do everything", async () => {
  await using s = await authServer({ mode: "basic", users: USERS });
  const bob = s.client(basic("bob", "bob-pw"));
  await pushImage(bob, "any/thing", "v1");
  assertEquals((await bob.get("/v2/_catalog")).json().repositories, ["any/thing"]);
  assertError(await s.client().get("/v2/any/thing/tags/list"), 401, "UNAUTHORIZED");
});
