// Unit tests of src/auth/limiter.ts: free failures, growing delays, block, expiry, success resets.

import { createLimiter } from "../../src/auth/limiter.ts";
import { assertEquals } from "../helpers.ts";

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
