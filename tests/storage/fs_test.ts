// Runs the shared StorageDriver suite against the fs driver, plus what only fs promises.
// Each test gets a fresh temp directory, removed afterwards.

import { createFsDriver } from "../../src/storage/fs.ts";
import { assertEquals, bytes, tempDir } from "../helpers.ts";
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
