// Owns the maintenance commands `gc` and `fsck`: one pass over the storage, a printed summary.
// Implements the offline GC (`gc [--dry-run]`) and integrity check (`fsck [--repair]`).

import type { ParsedCommand } from "../config.ts";
import type { StorageDriver } from "../storage/driver.ts";
import { createStore, type Store } from "../store/store.ts";
import { connectCoordination } from "../redis/shared.ts";
import { policiesFrom } from "../policy/policies.ts";
import type { CacheLimits } from "./cache.ts";
import { describeFsckReport, runFsck } from "./fsck.ts";
import { describeGcReport, runGc } from "./gc.ts";
import { applyRetention } from "./retention.ts";

export type MaintenanceCommand = Extract<ParsedCommand, { kind: "gc" | "fsck" }>;

/**
 * Runs the command and prints its report; resolves to the exit code: 0, or 1 when fsck found
 * problems (repaired or not), 2 when the storage cannot be maintained this way.
 */
export async function runMaintenance(
  command: MaintenanceCommand,
  driver: StorageDriver,
  storage = "",
  print: (line: string) => void = console.log,
  /** A mirror's cache and its limits: they apply to an offline pass too. */
  cache?: CacheLimits,
): Promise<number> {
  if (driver.kind === "memory") {
    print(`error: ${command.kind} needs persistent storage (--storage fs or s3)`);
    return 2;
  }
  const { config } = command;
  const policies = policiesFrom(config);
  if (command.kind === "gc" && policies.readOnly && !command.dryRun) {
    print(
      "error: the registry is read-only (read-only: true): gc deletes nothing then (--dry-run)",
    );
    return 2;
  }
  await driver.ready?.();
  // With --redis the pass takes the same locks and sees the same pins as the live instances.
  const coordination = config.redis && await connectCoordination({ ...config.redis, storage });
  try {
    const store = createStore({ driver, sharedStorage: true, coordination });
    return await run(command, store, print, cache);
  } finally {
    await coordination?.close();
  }
}

async function run(
  command: MaintenanceCommand,
  store: Store,
  print: (line: string) => void,
  cache: CacheLimits | undefined,
): Promise<number> {
  const { config } = command;
  const policies = policiesFrom(config);
  const state = store.state;
  if (command.kind === "gc") {
    const report = await runGc(state, {
      grace: config.gcGrace,
      untagged: config.gcUntagged,
      uploadTtl: config.uploadTtl,
      dryRun: command.dryRun,
      // Retention's rules from the config file, deleting through the store as the API does.
      retention: policies.retention.length === 0
        ? undefined
        : (repositories, context) => applyRetention(store, policies, repositories, context),
      cache,
    });
    print(describeGcReport(report));
    return 0;
  }
  const report = await runFsck(state, { repair: command.repair });
  print(describeFsckReport(report));
  return report.problems.length > 0 ? 1 : 0;
}
