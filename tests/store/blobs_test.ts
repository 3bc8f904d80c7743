// Unit tests of src/store/blobs.ts: the first full read of a blob in a process verifies its bytes
// once, however many clients ask for it at the same moment; later reads are not hashed again.

import { createStore } from "../../src/store/store.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { blobPath } from "../../src/storage/paths.ts";
import { parseDigest } from "../../src/grammar.ts";
import { assertEquals, digest, randomBytes, readAll, streamOf } from "../helpers.ts";

/**
 * A driver that counts full reads of one key; the first is held until `release()`, so that every
 * concurrent reader has asked before the first one's bytes flow.
 */
function countingDriver(inner: StorageDriver, key: string) {
  let fullReads = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const driver: StorageDriver = {
    ...inner,
    async read(k, range) {
      if (k !== key || range) return inner.read(k, range);
      fullReads++;
      if (fullReads === 1) await gate;
      return inner.read(k, range);
    },
  };
  return { driver, release, fullReads: () => fullReads };
}

Deno.test("blobs: eight concurrent first reads of a blob after a restart hash it once", async () => {
  const inner = createMemoryDriver();
  const bytes = randomBytes(3 * 1024 * 1024 + 5, 21);
  const d = parseDigest(digest(bytes))!;
  // Pushed by one process…
  await createStore({ driver: inner }).uploads.commit("app", d, streamOf(bytes));

  // …read by the next one, which has verified nothing yet.
  const counting = countingDriver(inner, blobPath(d));
  const store = createStore({ driver: counting.driver });
  const reads = Array.from({ length: 8 }, () => store.blobs.read("app", d).then(readAll));
  // Every reader is waiting on the one verification (a timer: microtasks alone might not do).
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(counting.fullReads(), 1, "one verification read, no reader served before it");
  counting.release();
  for (const got of await Promise.all(reads)) assertEquals(got, bytes);
  // One read to verify, one per reader to serve.
  assertEquals(counting.fullReads(), 1 + 8);

  // Verified once: a later full read is served without hashing again.
  assertEquals(await readAll(await store.blobs.read("app", d)), bytes);
  assertEquals(counting.fullReads(), 1 + 8 + 1);
});
