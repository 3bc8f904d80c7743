// Runs the shared StorageDriver suite against the fs driver, plus what only fs promises.
// Each test gets a fresh temp directory, removed afterwards.

import { createFsDriver } from "../../src/storage/fs.ts";
import { assertEquals, assertRejects, bytes, tempDir } from "../helpers.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("fs", async () => {
  const dir = await tempDir("registry-fs-driver-");
  return { driver: createFsDriver(dir.path), [Symbol.asyncDispose]: dir[Symbol.asyncDispose] };
});

Deno.test("fs driver: objects are files under the root and puts leave no temp files", async () => {
  await using dir = await tempDir("registry-fs-driver-");
  const driver = createFsDriver(dir.path);
  await driver.put("a/b", bytes("hello"));
  assertEquals(await Deno.readTextFile(`${dir.path}/a/b`), "hello");
  const names = [...Deno.readDirSync(`${dir.path}/a`)].map((e) => e.name);
  assertEquals(names, ["b"]);
});

Deno.test("fs driver: a second driver on the same root sees the data (restart)", async () => {
  await using dir = await tempDir("registry-fs-driver-");
  await createFsDriver(dir.path).append("_uploads/u/data", [bytes("abc")]);
  const again = createFsDriver(dir.path);
  assertEquals(await again.append("_uploads/u/data", [bytes("def")]), 6);
  assertEquals(new TextDecoder().decode(await again.get("_uploads/u/data")), "abcdef");
});

Deno.test("fs driver: puts racing to make the same new directories all land", async () => {
  await using dir = await tempDir("registry-fs-driver-");
  const driver = createFsDriver(dir.path);
  const keys = Array.from({ length: 20 }, (_, i) => `repositories/x/y/_layers/sha256/k${i}`);
  await Promise.all(keys.map((key) => driver.put(key, bytes(key))));
  await driver.move("repositories/x/y/_layers/sha256/k0", "blobs/sha256/ab/moved");
  assertEquals((await driver.list("repositories/x/y/_layers/sha256")).length, 19);
  assertEquals(new TextDecoder().decode(await driver.get("blobs/sha256/ab/moved")), keys[0]);
});

Deno.test("fs driver: a vetoed put leaves no directory or staged file behind", async () => {
  await using dir = await tempDir("registry-fs-driver-");
  const driver = createFsDriver(dir.path);
  async function* vetoed() {
    yield bytes("partial");
    throw new Error("veto");
  }
  await assertRejects(() => driver.put("blobs/sha256/ab/abc/data", vetoed()), Error, "veto");
  assertEquals(await driver.list("blobs"), []);
  assertEquals([...Deno.readDirSync(`${dir.path}/.tmp`)], []);
});

Deno.test("fs driver: ready() removes staged files a crash left, not fresh ones", async () => {
  await using dir = await tempDir("registry-fs-driver-");
  const driver = createFsDriver(dir.path);
  await driver.ready!(); // no staging directory yet: nothing to do
  Deno.mkdirSync(`${dir.path}/.tmp`);
  Deno.writeTextFileSync(`${dir.path}/.tmp/old`, "left by a crash");
  Deno.writeTextFileSync(`${dir.path}/.tmp/fresh`, "a put in flight");
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  Deno.utimeSync(`${dir.path}/.tmp/old`, twoHoursAgo, twoHoursAgo);
  await driver.ready!();
  assertEquals([...Deno.readDirSync(`${dir.path}/.tmp`)].map((e) => e.name), ["fresh"]);
});
