// The StorageDriver contract (src/storage/driver.ts) as one suite every driver must pass.
// Driver-agnostic: no filesystem peeking and no reliance on atomic rename (S3 will run it too).

import { NotFoundError, type StorageDriver } from "../../src/storage/driver.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  bytes,
  concat,
  randomBytes,
  readAll,
  text,
} from "../helpers.ts";

export interface DriverFixture extends AsyncDisposable {
  driver: StorageDriver;
}

const INVALID_KEYS = [
  "",
  "/",
  "/abs",
  "a//b",
  "a/",
  "..",
  "../escape",
  "a/../../b",
  "a/./b",
  ".",
  ".tmp-123",
  "a/.tmp-123",
  "a/.hidden",
];

/** Registers one Deno.test per clause of the contract, each on a fresh driver. */
export function driverSuite(name: string, makeDriver: () => Promise<DriverFixture>): void {
  const test = (title: string, fn: (driver: StorageDriver) => Promise<void>) =>
    Deno.test(`${name} driver: ${title}`, async () => {
      await using fixture = await makeDriver();
      await fn(fixture.driver);
    });

  test("put then get, stat and read return the bytes", async (driver) => {
    const data = randomBytes(70_000, 7);
    const before = Date.now();
    await driver.put("a/b/c", data);
    assertEquals(await driver.get("a/b/c"), data);
    const info = await driver.stat("a/b/c");
    assertEquals(info.size, data.length);
    assert(info.modified instanceof Date, "modified is a Date");
    // Coarse: file systems round mtimes, clocks tick.
    assert(Math.abs(info.modified.getTime() - before) < 60_000, "modified is about now");
    assertEquals(await readAll(await driver.read("a/b/c")), data);
  });

  test("put replaces an object and keeps no alias of the caller's buffer", async (driver) => {
    const data = bytes("first version");
    await driver.put("k", data);
    data.fill(0);
    assertEquals(text(await driver.get("k")), "first version");
    await driver.put("k", bytes("v2"));
    assertEquals(text(await driver.get("k")), "v2");
    assertEquals((await driver.stat("k")).size, 2);
  });

  test("put of empty bytes creates an empty object", async (driver) => {
    await driver.put("x/empty", new Uint8Array());
    assertEquals((await driver.stat("x/empty")).size, 0);
    assertEquals((await driver.get("x/empty")).length, 0);
  });

  test("put from a stream writes chunks given from one reused buffer", async (driver) => {
    const data = randomBytes(300_000, 11);
    await driver.put("s/k", bytes("old"));
    await driver.put("s/k", reusedChunks(data, 64 * 1024));
    assertEquals(await driver.get("s/k"), data);
    await driver.put("s/empty", reusedChunks(new Uint8Array(), 1));
    assertEquals((await driver.stat("s/empty")).size, 0);
  });

  test("put from a stream that throws at its end changes nothing", async (driver) => {
    await driver.put("v/k", bytes("kept"));
    const veto = new Error("veto");
    async function* vetoed() {
      yield* reusedChunks(randomBytes(200_000, 12), 64 * 1024);
      throw veto;
    }
    const error = await assertRejects(() => driver.put("v/k", vetoed()));
    assert(error === veto, "the source's own error comes back");
    assertEquals(text(await driver.get("v/k")), "kept");
    await assertRejects(() => driver.put("v/new", vetoed()));
    await assertRejects(() => driver.stat("v/new"), NotFoundError);
    assertEquals((await driver.list("v")).sort(), ["k"]);
  });

  test("get returns a copy the caller may change", async (driver) => {
    await driver.put("k", bytes("abc"));
    const got = await driver.get("k");
    got.fill(0);
    assertEquals(text(await driver.get("k")), "abc");
  });

  test("missing keys reject with NotFoundError", async (driver) => {
    await driver.put("present/x", bytes("1"));
    for (const key of ["missing", "present/y", "present/x/deeper"]) {
      await assertRejects(() => driver.stat(key), NotFoundError);
      await assertRejects(() => driver.get(key), NotFoundError);
      await assertRejects(() => driver.read(key), NotFoundError);
      await assertRejects(() => driver.read(key, { start: 0, end: 1 }), NotFoundError);
      await assertRejects(() => driver.move(key, "elsewhere"), NotFoundError);
    }
  });

  test("a prefix is not an object: stat and get of it reject with NotFoundError", async (driver) => {
    await driver.put("dir/file", bytes("1"));
    await assertRejects(() => driver.stat("dir"), NotFoundError);
    await assertRejects(() => driver.get("dir"), NotFoundError);
  });

  test("read with ranges (start inclusive, end exclusive)", async (driver) => {
    const data = randomBytes(300_000, 3);
    await driver.put("r", data);
    const cases: [number, number][] = [
      [0, 1],
      [0, 300_000],
      [1, 2],
      [100, 299_999],
      [
        299_999,
        300_000,
      ],
      [5, 5],
      [123_456, 262_144 + 10],
    ];
    for (const [start, end] of cases) {
      const got = await readAll(await driver.read("r", { start, end }));
      assertEquals(got.length, end - start, `length of ${start}-${end}`);
      assertEquals(got, data.slice(start, end), `bytes of ${start}-${end}`);
    }
  });

  test("read ranges across appended chunks", async (driver) => {
    await driver.append("r", [bytes("abc"), bytes("def"), bytes("ghi")]);
    assertEquals(text(await readAll(await driver.read("r", { start: 1, end: 8 }))), "bcdefgh");
    assertEquals(text(await readAll(await driver.read("r", { start: 3, end: 6 }))), "def");
    assertEquals(text(await readAll(await driver.read("r"))), "abcdefghi");
  });

  test("a read stream may be cancelled", async (driver) => {
    await driver.put("c", randomBytes(1_000_000));
    const stream = await driver.read("c");
    const reader = stream.getReader();
    await reader.read();
    await reader.cancel();
    const ranged = await driver.read("c", { start: 10, end: 900_000 });
    await ranged.cancel();
  });

  test("append creates, appends and resolves to the new size", async (driver) => {
    assertEquals(await driver.append("u/data", []), 0);
    assertEquals((await driver.stat("u/data")).size, 0, "empty append creates the object");
    assertEquals(await driver.append("u/data", [bytes("ab"), bytes("c")]), 3);
    async function* more() {
      yield bytes("de");
      yield new Uint8Array();
      yield bytes("f");
    }
    assertEquals(await driver.append("u/data", more()), 6);
    assertEquals(text(await driver.get("u/data")), "abcdef");
    assertEquals((await driver.stat("u/data")).size, 6);
    // Appending to an object made by put works too.
    await driver.put("p", bytes("x"));
    assertEquals(await driver.append("p", [bytes("y")]), 2);
    assertEquals(text(await driver.get("p")), "xy");
  });

  test("append copies chunks: a source that reuses its buffer is stored correctly", async (driver) => {
    const buffer = new Uint8Array(4096);
    const expected: Uint8Array[] = [];
    async function* reusing() {
      for (let i = 0; i < 5; i++) {
        buffer.fill(i + 1);
        expected.push(buffer.slice());
        yield buffer;
      }
    }
    assertEquals(await driver.append("reuse", reusing()), 5 * 4096);
    assertEquals(await driver.get("reuse"), concat(...expected));
  });

  test("append with a failing source rejects and keeps the bytes already appended", async (driver) => {
    await driver.append("f", [bytes("start-")]);
    const failure = new Error("source broke");
    async function* failing() {
      yield bytes("one-");
      yield bytes("two");
      throw failure;
    }
    const error = await assertRejects(() => driver.append("f", failing()));
    assertEquals(error.message, "source broke");
    assertEquals(text(await driver.get("f")), "start-one-two");
    assertEquals((await driver.stat("f")).size, 13);
    // The object stays usable.
    assertEquals(await driver.append("f", [bytes("!")]), 14);
  });

  test("list names objects and sub-prefixes directly under a prefix", async (driver) => {
    await driver.put("l/a", bytes("1"));
    await driver.put("l/b/c", bytes("2"));
    await driver.put("l/b/d/e", bytes("3"));
    await driver.append("l/u", [bytes("4")]);
    await driver.put("lx/z", bytes("5"));
    assertEquals((await driver.list("l")).sort(), ["a", "b", "u"]);
    assertEquals((await driver.list("l/b")).sort(), ["c", "d"]);
    assertEquals(await driver.list("l/b/d"), ["e"]);
    assertEquals(await driver.list("nothing"), []);
    assertEquals(await driver.list("l/nothing/deeper"), []);
    assertEquals(await driver.list("l/a"), [], "an object has no children");
  });

  test("list never shows temp names after many puts", async (driver) => {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => driver.put(`t/k${i % 3}`, randomBytes(1000, i))),
    );
    const names = await driver.list("t");
    assertEquals(names.sort(), ["k0", "k1", "k2"]);
  });

  test("move puts the bytes at the destination and the source is gone", async (driver) => {
    const data = randomBytes(50_000, 9);
    await driver.append("_uploads/x/data", [data.subarray(0, 100), data.subarray(100)]);
    await driver.move("_uploads/x/data", "blobs/sha256/ab/abcd");
    assertEquals(await driver.get("blobs/sha256/ab/abcd"), data);
    assertEquals((await driver.stat("blobs/sha256/ab/abcd")).size, data.length);
    await assertRejects(() => driver.stat("_uploads/x/data"), NotFoundError);
    assertEquals(await driver.list("_uploads/x"), []);
  });

  test("move replaces an existing destination", async (driver) => {
    await driver.put("src", bytes("new"));
    await driver.put("dst", bytes("old contents"));
    await driver.move("src", "dst");
    assertEquals(text(await driver.get("dst")), "new");
    assertEquals((await driver.stat("dst")).size, 3);
  });

  test("delete removes an object, or everything under a prefix", async (driver) => {
    await driver.put("d/one", bytes("1"));
    await driver.put("d/sub/two", bytes("2"));
    await driver.put("d/sub/deep/three", bytes("3"));
    await driver.put("d/subling", bytes("4"));
    await driver.put("keep", bytes("5"));

    await driver.delete("d/one");
    await assertRejects(() => driver.stat("d/one"), NotFoundError);

    await driver.delete("d/sub");
    await assertRejects(() => driver.get("d/sub/two"), NotFoundError);
    await assertRejects(() => driver.get("d/sub/deep/three"), NotFoundError);
    assertEquals(await driver.list("d/sub"), []);
    assertEquals(text(await driver.get("d/subling")), "4", "a sibling sharing a name prefix stays");
    assertEquals(await driver.list("d"), ["subling"]);
    assertEquals(text(await driver.get("keep")), "5");

    // Absent keys are not an error.
    await driver.delete("d/one");
    await driver.delete("never/was");
  });

  test("a deleted key can be written again", async (driver) => {
    await driver.put("again/k", bytes("1"));
    await driver.delete("again");
    await driver.put("again/k", bytes("2"));
    assertEquals(text(await driver.get("again/k")), "2");
  });

  test("invalid keys are rejected by every method, never touching storage", async (driver) => {
    await driver.put("safe/key", bytes("kept"));
    for (const key of INVALID_KEYS) {
      const label = JSON.stringify(key);
      for (
        const [op, call] of [
          ["stat", () => driver.stat(key)],
          ["get", () => driver.get(key)],
          ["put", () => driver.put(key, bytes("x"))],
          ["read", () => driver.read(key)],
          ["append", () => driver.append(key, [bytes("x")])],
          ["list", () => driver.list(key)],
          ["delete", () => driver.delete(key)],
          ["move from", () => driver.move(key, "safe/other")],
          ["move to", () => driver.move("safe/key", key)],
        ] as const
      ) {
        const error = await assertRejects(call);
        assert(!(error instanceof NotFoundError), `${op} ${label}: not a NotFoundError`);
      }
    }
    assertEquals(text(await driver.get("safe/key")), "kept", "a refused move keeps its source");
    assertEquals(await driver.list("safe"), ["key"]);
  });

  test("failures are rejected promises, never synchronous throws", async (driver) => {
    // Callers write `orMissing(driver.stat(key))`: a synchronous throw would escape it.
    const calls: (() => Promise<unknown>)[] = [
      () => driver.stat("missing"),
      () => driver.get("missing"),
      () => driver.read("missing"),
      () => driver.move("missing", "to"),
      () => driver.stat("../x"),
      () => driver.put("../x", bytes("1")),
      () => driver.list("/x"),
      () => driver.delete(""),
    ];
    for (const call of calls) await assertRejects(call);
  });

  test("keys with many segments and digest-like names", async (driver) => {
    const key =
      "repositories/org/team/app/_manifests/revisions/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    await driver.put(key, bytes("{}"));
    assertEquals(text(await driver.get(key)), "{}");
    assertEquals(await driver.list("repositories/org/team"), ["app"]);
  });

  test("concurrent appends to different keys and puts of one key stay whole", async (driver) => {
    const blobs = Array.from({ length: 8 }, (_, i) => randomBytes(20_000 + i, i + 1));
    await Promise.all(
      blobs.map((b, i) => driver.append(`c/${i}`, [b.subarray(0, 5), b.subarray(5)])),
    );
    for (const [i, b] of blobs.entries()) assertEquals(await driver.get(`c/${i}`), b);
    await Promise.all(blobs.map((b) => driver.put("c/same", b)));
    const final = await driver.get("c/same");
    assert(blobs.some((b) => b.length === final.length && b.every((x, j) => x === final[j])));
  });
}

/** The data as chunks of at most `size` bytes, all views of one buffer (as a request body). */
export async function* reusedChunks(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(size);
  for (let at = 0; at < data.length; at += size) {
    const piece = data.subarray(at, Math.min(data.length, at + size));
    buffer.set(piece);
    yield buffer.subarray(0, piece.length);
    buffer.fill(0xee); // a driver that kept a view of the chunk now holds garbage
  }
}
