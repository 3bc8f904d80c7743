// Unit tests of src/store/ingest.ts: a blob hashed as it is taken in and written behind it — the
// verdict before the write ends, the write at most `lag` behind, a mismatch or a failed source
// storing nothing, a failed write not holding the source up.

import { RegistryError } from "../../src/errors.ts";
import { parseDigest } from "../../src/grammar.ts";
import { ingestBlob } from "../../src/store/ingest.ts";
import { createStore } from "../../src/store/store.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  digest,
  gatedDriver,
  randomBytes,
  readAll,
} from "../helpers.ts";

/** A memory store whose puts wait for `gate` (or fail), and a source that counts what it gave. */
function setup(options: Parameters<typeof gatedDriver>[0] = {}) {
  const { driver, inner } = gatedDriver(options);
  return { store: createStore({ driver }), driver: inner };
}

function counted(data: Uint8Array, chunk: number, fail?: Error) {
  const source = { taken: 0 };
  async function* chunks() {
    for (let at = 0; at < data.length; at += chunk) {
      const part = data.slice(at, at + chunk);
      source.taken += part.length;
      yield part;
    }
    if (fail) throw fail;
  }
  return { source, chunks: chunks() };
}

const stored = async (store: ReturnType<typeof createStore>, name: string, value: string) => {
  const d = parseDigest(value)!;
  return await store.blobs.size(name, d) === undefined
    ? undefined
    : await readAll(await store.blobs.read(name, d));
};

Deno.test("ingest: verified once the source is in, committed once the slow write ends", async () => {
  let open!: () => void;
  const { store } = setup({ gate: new Promise((resolve) => open = resolve) });
  const data = randomBytes(1_000_000, 1);
  const { source, chunks } = counted(data, 64 * 1024);
  const ingest = store.uploads.ingest("up/app", parseDigest(digest(data))!, chunks);
  await ingest.verified;
  assertEquals(source.taken, data.length, "the source was not held up by the write");
  let committed = false;
  ingest.committed.then(() => committed = true);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assertEquals(committed, false);
  open();
  await ingest.committed;
  assertEquals(await stored(store, "up/app", digest(data)), data);
});

Deno.test("ingest: the write falls at most `lag` behind the source", async () => {
  let open!: () => void;
  const { store } = setup({ gate: new Promise((resolve) => open = resolve) });
  const data = randomBytes(4_000_000, 2);
  const { source, chunks } = counted(data, 100_000);
  const lag = 1_000_000;
  const ingest = ingestBlob(store.state, "up/app", parseDigest(digest(data))!, chunks, lag);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert(source.taken <= lag + 100_000, `taken ${source.taken} while the write waits`);
  open();
  await ingest.committed;
  assertEquals(source.taken, data.length);
  assertEquals(await stored(store, "up/app", digest(data)), data);
});

Deno.test("ingest: bytes that do not match the digest are refused and nothing is stored", async () => {
  const { store, driver } = setup();
  const data = randomBytes(300_000, 3);
  const claimed = parseDigest(digest(randomBytes(300_000, 4)))!;
  const ingest = store.uploads.ingest("up/app", claimed, counted(data, 64 * 1024).chunks);
  const error = await assertRejects(() => ingest.verified, RegistryError);
  assertEquals((error as RegistryError).code, "DIGEST_INVALID");
  await assertRejects(() => ingest.committed, RegistryError);
  assertEquals(await driver.list("blobs"), []);
  assertEquals(await store.blobs.size("up/app", claimed), undefined);
});

Deno.test("ingest: a source that breaks off stores nothing", async () => {
  const { store, driver } = setup();
  const data = randomBytes(300_000, 5);
  const { chunks } = counted(data.slice(0, 100_000), 50_000, new Error("connection reset"));
  const ingest = store.uploads.ingest("up/app", parseDigest(digest(data))!, chunks);
  await assertRejects(() => ingest.verified, Error, "connection reset");
  await assertRejects(() => ingest.committed, Error, "connection reset");
  assertEquals(await driver.list("blobs"), []);
});

Deno.test("ingest: a failed write does not hold the source up; committed reports it", async () => {
  const { store } = setup({ failWrites: true });
  const data = randomBytes(3_000_000, 6);
  const { source, chunks } = counted(data, 100_000);
  const ingest = ingestBlob(store.state, "up/app", parseDigest(digest(data))!, chunks, 500_000);
  await ingest.verified;
  assertEquals(source.taken, data.length);
  const error = await assertRejects(() => ingest.committed, RegistryError);
  assertEquals((error as RegistryError).code, "UNAVAILABLE");
});

Deno.test("ingest: a blob stored already is linked, not written again", async () => {
  const { store } = setup();
  const data = randomBytes(200_000, 7);
  const d = parseDigest(digest(data))!;
  await store.uploads.commit("other/app", d, ReadableStream.from([data]));
  const ingest = store.uploads.ingest("up/app", d, counted(data, 64 * 1024).chunks);
  await ingest.committed;
  assertEquals(await stored(store, "up/app", d.value), data);
});
