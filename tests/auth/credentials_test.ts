// End-to-end tests of password checks (src/auth/credentials.ts) over HTTP: the worker pool and its
// bound, the budget of an address across user names, logged-in users unaffected, trusted proxies.

import { createBcryptPool } from "../../src/auth/bcrypt_pool.ts";
import { assert, assertEquals, assertError } from "../helpers.ts";
import { authServer, basic } from "./fixtures.ts";

const USERS = { alice: "alice-pw", bob: "bob-pw" };
const FAKE = new URL("./fake_bcrypt_worker.ts", import.meta.url);
/** Failures from one address: slowed from the 3rd on (50 ms), refused after the 4th. */
const SPRAY = { address: { freeFailures: 2, maxFailures: 4, baseDelayMs: 50, blockMs: 60_000 } };

Deno.test("credentials: passwords are checked by the worker pool", async () => {
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { bcrypt: { workerUrl: FAKE } },
  });
  // The fake worker accepts "pool" for anyone in the file: only the pool can have said yes.
  assertEquals((await s.client(basic("alice", "pool")).get("/v2/")).status, 200);
  assertError(await s.client(basic("alice", "alice-pw")).get("/v2/"), 401, "UNAUTHORIZED");
});

Deno.test("credentials: one address spraying user names is slowed, then 429 with Retry-After", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, tuning: { limits: SPRAY } });
  for (let i = 0; i < 4; i++) {
    assertError(await s.client(basic(`u${i}`, "pw")).get("/v2/"), 401, "UNAUTHORIZED");
  }
  const refused = await s.client(basic("u9", "pw")).get("/v2/");
  assertError(refused, 429, "TOOMANYREQUESTS");
  const retry = Number(refused.headers.get("retry-after"));
  assert(retry > 50 && retry <= 60, `Retry-After ${retry}`);
  // A new login from the sprayed address waits too, even with the right password…
  assertError(await s.client(basic("bob", "bob-pw")).get("/v2/"), 429, "TOOMANYREQUESTS");
});

Deno.test("credentials: a logged-in user keeps working while its address is blocked", async () => {
  await using s = await authServer({ mode: "basic", users: USERS, tuning: { limits: SPRAY } });
  const alice = s.client(basic("alice", "alice-pw"));
  assertEquals((await alice.get("/v2/")).status, 200);
  for (let i = 0; i < 5; i++) await s.client(basic(`u${i}`, "pw")).get("/v2/");
  assertError(await s.client(basic("u9", "pw")).get("/v2/"), 429, "TOOMANYREQUESTS");
  assertEquals((await alice.get("/v2/")).status, 200, "cached credentials pass");
});

Deno.test("credentials: guesses at a logged-in user from a blocked address end in its block", async () => {
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { limits: { ...SPRAY, maxFailures: 3 } },
  });
  const alice = s.client(basic("alice", "alice-pw"));
  assertEquals((await alice.get("/v2/")).status, 200);
  for (let i = 0; i < 5; i++) await s.client(basic(`u${i}`, "pw")).get("/v2/");
  // Refused unchecked, yet counted: the cache is no free oracle for a blocked address.
  for (let i = 0; i < 3; i++) {
    assertError(await s.client(basic("alice", `guess${i}`)).get("/v2/"), 429, "TOOMANYREQUESTS");
  }
  assertError(await alice.get("/v2/"), 429, "TOOMANYREQUESTS");
});

Deno.test("credentials: behind a trusted proxy each client has its own limits", async () => {
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { limits: { maxFailures: 3, ...SPRAY } },
    trustedProxies: ["127.0.0.1"],
  });
  const from = (client: string, password: string) =>
    s.client({ ...basic("alice", password), "x-forwarded-for": client }).get("/v2/");
  for (let i = 0; i < 3; i++) await from("198.51.100.1", "wrong");
  assertError(await from("198.51.100.1", "alice-pw"), 429, "TOOMANYREQUESTS");
  assertEquals((await from("198.51.100.2", "alice-pw")).status, 200, "another client");
});

Deno.test("credentials: without a trusted proxy, X-Forwarded-For cannot dodge the limits", async () => {
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { limits: { maxFailures: 3, ...SPRAY } },
  });
  const from = (client: string, password: string) =>
    s.client({ ...basic("alice", password), "x-forwarded-for": client }).get("/v2/");
  for (let i = 0; i < 3; i++) await from(`198.51.100.${i}`, "wrong");
  assertError(await from("198.51.100.9", "alice-pw"), 429, "TOOMANYREQUESTS");
});

Deno.test("credentials: checks beyond the global bound are 503 with Retry-After, not queued", async () => {
  // The fake worker never answers "hold": the pool's one slot stays taken.
  const pool = createBcryptPool({ workerUrl: FAKE, workers: 1, maxPending: 1 });
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { pool, checks: { perAddress: 9 } },
  });
  const held = fetch(`${s.url}/v2/`, { headers: basic("alice", "hold") });
  await until(() => pool.pending() === 1);
  const busy = await s.client(basic("bob", "other")).get("/v2/");
  assertError(busy, 503, "UNAVAILABLE");
  assertEquals(busy.headers.get("retry-after"), "1");
  pool.close();
  await (await held).body?.cancel();
});

Deno.test("credentials: one address may have only so many checks running", async () => {
  const pool = createBcryptPool({ workerUrl: FAKE, maxPending: 9 });
  await using s = await authServer({
    mode: "basic",
    users: USERS,
    tuning: { pool, checks: { perAddress: 1 } },
  });
  const held = fetch(`${s.url}/v2/`, { headers: basic("alice", "hold") });
  await until(() => pool.pending() === 1);
  assertError(await s.client(basic("bob", "other")).get("/v2/"), 429, "TOOMANYREQUESTS");
  assertEquals(pool.pending(), 1, "refused before reaching the pool");
  pool.close();
  await (await held).body?.cancel();
});

/** Polls a condition about the server's state (not a timing assertion: it only waits). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert(condition(), "the condition never held");
}
