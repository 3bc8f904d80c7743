// The sessions revoked in memory: remembered until they would have ended, and never more than the cap.

import { createMemoryRevocations } from "../src/revocations.ts";
import { assertEquals } from "./helpers.ts";

Deno.test("revocations: a revoked id is refused, others are not", async () => {
  const revocations = createMemoryRevocations(() => 0);
  await revocations.revoke("a", 100);
  assertEquals(await revocations.isRevoked("a"), true);
  assertEquals(await revocations.isRevoked("b"), false);
});

Deno.test("revocations: ids whose sessions have ended are dropped, within the cap", async () => {
  let now = 0;
  const revocations = createMemoryRevocations(() => now, 3);
  await revocations.revoke("early", 10);
  await revocations.revoke("late", 1000);
  now = 500;
  await revocations.revoke("next", 1500);
  assertEquals(await revocations.isRevoked("early"), false, "its session ended at 10");
  assertEquals(await revocations.isRevoked("late"), true);
  await revocations.revoke("fourth", 1600);
  await revocations.revoke("fifth", 1700);
  const kept = [];
  for (const id of ["late", "next", "fourth", "fifth"]) {
    if (await revocations.isRevoked(id)) kept.push(id);
  }
  assertEquals(kept, ["next", "fourth", "fifth"], "the cap drops the first revoked");
});
