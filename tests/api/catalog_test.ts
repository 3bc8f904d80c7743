// The catalog index (`_catalog/`): one listing answers /v2/_catalog on any driver, a store written
// before the index existed is walked once and backfilled, and fs/memory answers stay the same.

import { createMemoryDriver } from "../../src/storage/memory.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { catalogIndexedPath } from "../../src/storage/paths.ts";
import { assertEquals, pushImage, withServer } from "../helpers.ts";

/** A driver that counts list calls. */
function counting(driver: StorageDriver): StorageDriver & { lists: number } {
  const counted = {
    ...driver,
    lists: 0,
    list(prefix: string) {
      counted.lists++;
      return driver.list(prefix);
    },
  };
  return counted;
}

const NAMES = ["alpine", "library/ubuntu", "org/team/app", "org/team/app/sub", "zeta"];

Deno.test("catalog: one listing, however many repositories and levels", async () => {
  const driver = counting(createMemoryDriver());
  await using server = await withServer("memory", { driver });
  for (const name of NAMES) await pushImage(server.client, name, "v1", { layerCount: 1 });
  await server.client.get("/v2/_catalog"); // the first listing may walk (empty index) once
  driver.lists = 0;
  const res = await server.client.get("/v2/_catalog");
  assertEquals(res.json().repositories, NAMES);
  // At most one listing (unshared storage keeps the sorted index in memory after the first).
  assertEquals(driver.lists <= 1, true, `list calls for one catalog request (${driver.lists})`);
  const page = await server.client.get("/v2/_catalog?n=2&last=library/ubuntu");
  assertEquals(page.json().repositories, ["org/team/app", "org/team/app/sub"]);
});

Deno.test("catalog: a store without the index is walked once, then served from the index", async () => {
  const driver = counting(createMemoryDriver());
  {
    await using server = await withServer("memory", { driver });
    for (const name of NAMES) await pushImage(server.client, name, "v1", { layerCount: 1 });
  }
  // As written by a build before the index: only the tree under repositories/.
  await driver.delete("_catalog");
  await using server = await withServer("memory", { driver });
  driver.lists = 0;
  assertEquals((await server.client.get("/v2/_catalog")).json().repositories, NAMES);
  const walked = driver.lists;
  assertEquals(walked > NAMES.length, true, `the walk lists every level (${walked})`);
  assertEquals((await driver.stat(catalogIndexedPath)).size, 0);
  driver.lists = 0;
  assertEquals((await server.client.get("/v2/_catalog")).json().repositories, NAMES);
  assertEquals(driver.lists <= 1, true, `list calls after the walk (${driver.lists})`);
});

Deno.test("catalog: a repository stays listed after its manifests are deleted (as on fs)", async () => {
  await using server = await withServer("memory");
  const image = await pushImage(server.client, "gone", "v1", { layerCount: 1 });
  const res = await server.client.request("DELETE", `/v2/gone/manifests/${image.digest}`);
  assertEquals(res.status, 202);
  assertEquals((await server.client.get("/v2/_catalog")).json().repositories, ["gone"]);
});
