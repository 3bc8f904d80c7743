// Runs the shared StorageDriver suite against the in-memory driver.
// Each test gets a fresh driver; nothing to clean up.

import { createMemoryDriver } from "../../src/storage/memory.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("memory", () =>
  Promise.resolve({
    driver: createMemoryDriver(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  }));
