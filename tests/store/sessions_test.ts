// Unit tests of src/sessions.ts: a `_state` verifies only for the session it was signed for, the
// key is made once in storage and shared, and ended sessions are remembered within bounds.

import {
  createSessions,
  isLive,
  markEnded,
  signState,
  verifyState,
} from "../../src/store/sessions.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { UPLOAD_STATE_KEY } from "../../src/storage/paths.ts";
import { assert, assertEquals, assertRejects } from "../helpers.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";

const UUID = "0f8fad5b-d9cb-469f-a165-70867728950e";
const OTHER = "1f8fad5b-d9cb-469f-a165-70867728950e";

Deno.test("sessions: a state verifies only for its repository, uuid and key", async () => {
  const driver = createMemoryDriver();
  const key = await createSessions(driver, 1000).key();
  const startedAt = 1_790_000_000_123;
  const state = signState(key, { name: "a/b", uuid: UUID, startedAt });
  assertEquals(verifyState(key, "a/b", UUID, state), startedAt);
  assertEquals(verifyState(key, "a/c", UUID, state), undefined, "other repository");
  assertEquals(verifyState(key, "a/b", OTHER, state), undefined, "other uuid");
  const otherKey = key.slice();
  otherKey[0] ^= 1;
  assertEquals(verifyState(otherKey, "a/b", UUID, state), undefined, "other key");
  const [time, mac] = state.split(".");
  for (const bad of [`${time}.${mac.slice(1)}`, `${time}.${mac}x`, `${time}`, "", `.${mac}`]) {
    assertEquals(verifyState(key, "a/b", UUID, bad), undefined, bad);
  }
});

Deno.test("sessions: the key is made once in storage and read by every instance", async () => {
  const driver = createMemoryDriver();
  const first = await createSessions(driver, 1000).key();
  assertEquals(first.length, 32);
  assertEquals(await driver.get(UPLOAD_STATE_KEY), first);
  assertEquals(await createSessions(driver, 1000).key(), first, "a second instance");
});

Deno.test("sessions: a key overwritten by another instance is adopted on reload", async () => {
  const driver = createMemoryDriver();
  const patient = createSessions(driver, 1000, 60_000);
  const eager = createSessions(driver, 1000, 0);
  const mine = await patient.key();
  assertEquals(await eager.key(), mine);
  const theirs = mine.map((byte) => byte ^ 1);
  await driver.put(UPLOAD_STATE_KEY, theirs);
  assertEquals(await patient.reload(), undefined, "not again so soon");
  assertEquals(await patient.key(), mine);
  assertEquals(await eager.reload(), theirs);
  assertEquals(await eager.key(), theirs);
  assertEquals(await eager.reload(), undefined, "unchanged");
});

Deno.test("sessions: a storage failure is not remembered; the next call tries again", async () => {
  const driver = createMemoryDriver();
  let failing = true;
  const flaky: StorageDriver = {
    ...driver,
    get: (key) => failing ? Promise.reject(new Error("storage down")) : driver.get(key),
  };
  const sessions = createSessions(flaky, 1000);
  await assertRejects(() => sessions.key(), Error, "storage down");
  failing = false;
  assertEquals((await sessions.key()).length, 32);
});

Deno.test("sessions: live until ended or past the TTL; ended ones are forgotten after it", () => {
  const sessions = createSessions(createMemoryDriver(), 1000);
  assert(isLive(sessions, UUID, 5000, 5500));
  assert(!isLive(sessions, UUID, 5000, 6001), "past the TTL");
  markEnded(sessions, UUID, 5600);
  assert(!isLive(sessions, UUID, 5000, 5700), "ended");
  markEnded(sessions, OTHER, 6700); // the first ended over a TTL before: forgotten
  assertEquals([...sessions.ended.keys()], [OTHER]);
});
