// Unit tests of src/auth/limiter.ts: free failures, growing delays, block, expiry, success resets,
// the budget of an address across user names, and blocks that flooding cannot evict.

import { addressKey, createLimiter } from "../../src/auth/limiter.ts";
import { assert, assertEquals } from "../helpers.ts";

Deno.test("limiter: slowed after the free failures, then blocked, then free again", () => {
  let clock = 0;
  const limiter = createLimiter({
    freeFailures: 2,
    maxFailures: 5,
    baseDelayMs: 100,
    maxDelayMs: 250,
    blockMs: 60_000,
    now: () => clock,
  });
  const delays = [1, 2, 3, 4].map(() => limiter.failure("1.2.3.4", "alice"));
  assertEquals(delays, [0, 0, 100, 200]);
  assertEquals(limiter.blockedFor("1.2.3.4", "alice"), 0);
  limiter.failure("1.2.3.4", "alice");
  assertEquals(limiter.blockedFor("1.2.3.4", "alice"), 60_000);
  assertEquals(limiter.blockedFor("1.2.3.4", "bob"), 0, "per user");
  assertEquals(limiter.blockedFor("5.6.7.8", "alice"), 0, "per address");
  clock += 59_000;
  assertEquals(limiter.blockedFor("1.2.3.4", "alice"), 1000);
  clock += 1000;
  assertEquals(limiter.blockedFor("1.2.3.4", "alice"), 0);
});

Deno.test("limiter: success forgets; old failures expire; entries are bounded", () => {
  let clock = 0;
  const limiter = createLimiter({
    freeFailures: 1,
    baseDelayMs: 10,
    windowMs: 1000,
    maxEntries: 2,
    now: () => clock,
  });
  limiter.failure("a", "u");
  assertEquals(limiter.failure("a", "u"), 10);
  limiter.success("a", "u");
  assertEquals(limiter.failure("a", "u"), 0);
  clock += 2000;
  assertEquals(limiter.failure("a", "u"), 0, "the window passed");
  limiter.failure("b", "u");
  limiter.failure("c", "u"); // evicts a
  assertEquals(limiter.failure("a", "u"), 0);
});

Deno.test("limiter: one address spraying user names is slowed, then blocked, alone", () => {
  let clock = 0;
  const limiter = createLimiter({
    address: { freeFailures: 3, maxFailures: 6, baseDelayMs: 100, blockMs: 60_000 },
    now: () => clock,
  });
  const delays = [1, 2, 3, 4, 5].map((i) => limiter.failure("1.2.3.4", `user${i}`));
  assertEquals(delays, [0, 0, 0, 100, 200], "each user fails once: the address budget slows");
  assertEquals(limiter.addressBlockedFor("1.2.3.4"), 0);
  limiter.success("1.2.3.4", "alice");
  limiter.failure("1.2.3.4", "user6");
  assertEquals(limiter.addressBlockedFor("1.2.3.4"), 60_000, "a success bought no new guesses");
  assertEquals(limiter.addressBlockedFor("5.6.7.8"), 0, "other addresses unaffected");
  assertEquals(limiter.blockedFor("1.2.3.4", "user1"), 0, "no user is blocked by it");
  clock += 60_000;
  assertEquals(limiter.addressBlockedFor("1.2.3.4"), 0);
});

Deno.test("limiter: an IPv6 client is limited by its /64", () => {
  const limiter = createLimiter({ address: { maxFailures: 2 } });
  limiter.failure("2001:db8:1:2::1", "a");
  limiter.failure("2001:db8:1:2:ffff::9", "b");
  assert(limiter.addressBlockedFor("2001:db8:1:2::77") > 0);
  assertEquals(limiter.addressBlockedFor("2001:db8:1:3::1"), 0);
  assertEquals(addressKey("::ffff:10.0.0.1"), "10.0.0.1");
});

Deno.test("limiter: guesses refused unchecked still count against the user", () => {
  const limiter = createLimiter({ maxFailures: 3 });
  for (let i = 0; i < 3; i++) limiter.refused("1.2.3.4", "alice");
  assert(limiter.blockedFor("1.2.3.4", "alice") > 0);
  assertEquals(limiter.addressBlockedFor("1.2.3.4"), 0, "refusals do not feed the address");
});

Deno.test("limiter: 10,050 failures with fresh user names evict no block (default sizes)", () => {
  const limiter = createLimiter();
  for (let i = 0; i < 10; i++) limiter.failure("1.2.3.4", "alice");
  assert(limiter.blockedFor("1.2.3.4", "alice") > 0);
  for (let i = 0; i < 10_050; i++) {
    limiter.failure(`10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}`, `u${i}`);
  }
  for (let i = 0; i < 10_050; i++) limiter.failure("1.2.3.4", `fresh${i}`);
  assert(limiter.blockedFor("1.2.3.4", "alice") > 0, "the pair's block survived");
  assert(limiter.addressBlockedFor("1.2.3.4") > 0, "the address's block survived");
});

Deno.test("limiter: a table full of live blocks counts no new key, then frees room as they end", () => {
  let clock = 0;
  const limiter = createLimiter({ maxFailures: 1, maxEntries: 3, blockMs: 1000, now: () => clock });
  for (const user of ["a", "b", "c"]) limiter.failure("1.1.1.1", user);
  limiter.failure("1.1.1.1", "d");
  assertEquals(limiter.blockedFor("1.1.1.1", "d"), 0, "no room: d is not tracked");
  for (const user of ["a", "b", "c"]) assert(limiter.blockedFor("1.1.1.1", user) > 0, user);
  clock += 1000;
  limiter.failure("1.1.1.1", "d");
  assert(limiter.blockedFor("1.1.1.1", "d") > 0, "expired blocks made room");
});
