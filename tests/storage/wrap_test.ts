// A wrapped driver forwards every operation of the contract, optional ones too, through one
// function, and tells the caller's own source errors apart from the storage's.

import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { wrapDriver } from "../../src/storage/wrap.ts";
import { assertEquals, assertRejects } from "../helpers.ts";

Deno.test("wrapDriver: every operation of the driver, optional ones too, passes through", async () => {
  const inner: StorageDriver = {
    ...createMemoryDriver(),
    signedUrl: (key, expiresIn) => Promise.resolve(`https://bucket/${key}?e=${expiresIn}`),
    ready: () => Promise.resolve(),
  };
  const ops: string[] = [];
  const wrapped = wrapDriver(inner, (op, _key, work) => {
    ops.push(op);
    return work();
  });
  // Every method the inner driver has, the wrapped one has too.
  for (const [name, value] of Object.entries(inner)) {
    assertEquals(typeof (wrapped as unknown as Record<string, unknown>)[name], typeof value, name);
  }
  await wrapped.put("a/b", new Uint8Array([1]));
  await wrapped.stat("a/b");
  assertEquals(await wrapped.signedUrl!("a/b", 60), "https://bucket/a/b?e=60");
  await wrapped.ready!();
  assertEquals(ops, ["put", "stat", "sign", "ready"]);
});

Deno.test("wrapDriver: an error of the caller's own source is marked as its own", async () => {
  let seen: ReadonlySet<unknown> | undefined;
  const wrapped = wrapDriver(createMemoryDriver(), async (_op, _key, work, own) => {
    try {
      return await work();
    } catch (error) {
      seen = own;
      throw error;
    }
  });
  const gone = new Error("client went away");
  async function* source() {
    yield new Uint8Array([1]);
    throw gone;
  }
  await assertRejects(() => wrapped.append("u/data", source()), Error, "client went away");
  assertEquals(seen?.has(gone), true);
});
