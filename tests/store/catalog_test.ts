// The catalog's pages cost what they return: the index is listed once, not once a page, on
// unshared storage for good and on shared storage (several instances) for a short while.

import { addToCatalog, listRepositories, sortedRepositories } from "../../src/store/catalog.ts";
import { createState } from "../../src/store/state.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { catalogIndexedPath } from "../../src/storage/paths.ts";
import { assertEquals } from "../helpers.ts";

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

const NAMES = ["a", "b/c", "b0", "b-c", "d"];

for (const sharedStorage of [false, true]) {
  Deno.test(`catalog (${sharedStorage ? "shared" : "unshared"} storage): walking it page by page lists the index once`, async () => {
    const driver = counting(createMemoryDriver());
    const state = createState({ driver, sharedStorage });
    await driver.put(catalogIndexedPath, new Uint8Array()); // no walk of an older store
    for (const name of NAMES) await addToCatalog(state, name);
    driver.lists = 0;
    const seen: string[] = [];
    let last: string | undefined;
    do {
      const page = await listRepositories(state, { n: 2, last });
      seen.push(...page.items);
      last = page.next;
    } while (last !== undefined);
    assertEquals(seen, [...NAMES].sort());
    assertEquals(driver.lists, 1);
  });
}

Deno.test("catalog (shared storage): another instance's repository shows once the listing is old", async () => {
  const driver = createMemoryDriver();
  const a = createState({ driver, sharedStorage: true });
  const b = createState({ driver, sharedStorage: true });
  await addToCatalog(a, "first");
  assertEquals(await sortedRepositories(b), ["first"]);
  await addToCatalog(a, "second");
  assertEquals(await sortedRepositories(b), ["first"], "still the listing of a moment ago");
  assertEquals(await sortedRepositories(b, Date.now() + 60_000), ["first", "second"]);
});
