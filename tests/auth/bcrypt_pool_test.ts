// Unit tests of src/auth/bcrypt_pool.ts: checks run in workers, the bound on pending checks, a
// crashed worker replaced, close rejecting what is left.

import bcrypt from "bcryptjs";
import { createBcryptPool, PoolBusyError } from "../../src/auth/bcrypt_pool.ts";
import { assert, assertEquals, assertRejects } from "../helpers.ts";

const FAKE = new URL("./fake_bcrypt_worker.ts", import.meta.url);

Deno.test("bcrypt pool: the real worker compares bcrypt hashes", async () => {
  const pool = createBcryptPool({ workers: 2 });
  try {
    const hash = bcrypt.hashSync("secret", 4);
    const results = await Promise.all(
      ["secret", "wrong", "secret", ""].map((password) => pool.compare(password, hash)),
    );
    assertEquals(results, [true, false, true, false]);
    assertEquals(pool.pending(), 0);
  } finally {
    pool.close();
  }
});

Deno.test({
  name: "bcrypt pool: the worker thread runs at the lowest priority, the event loop does not",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const pool = createBcryptPool({ workers: 1 });
    try {
      await pool.compare("x", bcrypt.hashSync("x", 4));
      const nice = (task: string) => {
        const stat = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${task}/stat`);
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      };
      const tasks = [...Deno.readDirSync(`/proc/${Deno.pid}/task`)].map((entry) => entry.name);
      assertEquals(nice(String(Deno.pid)), 0, "the main thread");
      assert(tasks.some((task) => nice(task) === 19), "a thread at nice 19");
    } finally {
      pool.close();
    }
  },
});

Deno.test("bcrypt pool: checks are answered by the worker module, not the event loop", async () => {
  const pool = createBcryptPool({ workers: 1, workerUrl: FAKE });
  try {
    // The fake worker says yes to "pool" whatever the hash: only it can have answered.
    assertEquals(await pool.compare("pool", "not-a-hash"), true);
    assertEquals(await pool.compare("other", "not-a-hash"), false);
  } finally {
    pool.close();
  }
});

Deno.test("bcrypt pool: beyond maxPending a check is refused at once; close rejects the rest", async () => {
  const pool = createBcryptPool({ workers: 1, maxPending: 2, workerUrl: FAKE });
  const running = pool.compare("hold", "h");
  const waiting = pool.compare("hold", "h");
  assertEquals(pool.pending(), 2);
  await assertRejects(() => pool.compare("pool", "h"), PoolBusyError);
  pool.close();
  await assertRejects(() => running, Error, "closed");
  await assertRejects(() => waiting, Error, "closed");
  assertEquals(pool.pending(), 0);
});

Deno.test("bcrypt pool: a crashed worker fails its check only; the next gets a new worker", async () => {
  const pool = createBcryptPool({ workers: 1, workerUrl: FAKE });
  try {
    const crashed = await pool.compare("crash", "h").then(() => "resolved", (e) => e.message);
    assert(String(crashed).includes("bcrypt worker failed"), crashed);
    assertEquals(await pool.compare("pool", "h"), true);
  } finally {
    pool.close();
  }
});

Deno.test("bcrypt pool: idle workers stop, and a later check starts one again", async () => {
  const pool = createBcryptPool({ workers: 1, idleMs: 0, workerUrl: FAKE });
  try {
    assertEquals(await pool.compare("pool", "h"), true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertEquals(await pool.compare("pool", "h"), true);
  } finally {
    pool.close();
  }
});
