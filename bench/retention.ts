// Bench section "retention" (issue 16): a retention pass over 10,000 tags, its dry run beside it,
// and config reloads (parse, compile, switch) with many rules. In process, on the memory driver.
//
//   deno task bench --only retention        (or: deno run -A bench/retention.ts [TAGS])

import { parseDigest } from "../src/grammar.ts";
import { runGc } from "../src/maintenance/gc.ts";
import { applyRetention } from "../src/maintenance/retention.ts";
import { policiesFrom } from "../src/policy/policies.ts";
import { loadCommand } from "../src/settings/load.ts";
import { readConfigFile } from "../src/settings/file.ts";
import { startServer } from "../src/server.ts";
import { createAuth } from "../src/auth/auth.ts";
import { createMemoryDriver } from "../src/storage/memory.ts";
import { createFsDriver } from "../src/storage/fs.ts";
import { createStore, type Store } from "../src/store/store.ts";
import { createHash } from "node:crypto";
import bcrypt from "bcryptjs";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);
const RULES = `
retention:
  - repositories: ci/**
    keep-last: 100
    keep-tags: ^v\\d+
    older-than: 3d
    untagged-after: 1d
immutable-tags:
  - repositories: ci/**
    tags: ^main-
`;

const sha = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function* chunks(data: Uint8Array) {
  yield data;
}

/** `tags` tags pushed evenly over a simulated week, each a distinct small image. */
async function seed(tags: number, dir?: string): Promise<{ store: Store; now: number }> {
  let at = T0;
  // On disk the files carry the real clock: the week is laid out ending now instead.
  const driver = dir ? createFsDriver(dir) : createMemoryDriver({ now: () => at });
  const store = createStore({ driver, recordPulls: true });
  const encoder = new TextEncoder();
  for (let i = 0; i < tags; i++) {
    at = T0 + Math.floor((i * 7 * DAY) / tags);
    const layer = encoder.encode(`layer ${i}`);
    const config = encoder.encode(JSON.stringify({ architecture: "amd64", os: "linux", i }));
    for (const blob of [config, layer]) {
      await store.uploads.commit("ci/app", parseDigest(sha(blob))!, chunks(blob));
    }
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha(config),
        size: config.length,
      },
      layers: [{
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: sha(layer),
        size: layer.length,
      }],
    }));
    const tag = i % 500 === 0 ? `main-${i}` : i % 1000 === 1 ? `v1.${i}` : `pr-${i}`;
    await store.manifests.put(
      "ci/app",
      { tag },
      manifest,
      "application/vnd.oci.image.manifest.v1+json",
    );
  }
  return { store, now: dir ? Date.now() + 7 * DAY : T0 + 7 * DAY };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

export interface RetentionFigures {
  tags: number;
  deletedTags: number;
  deletedManifests: number;
  /** Retention's own time (plan + deletes), and the whole GC pass around it, ms. */
  dryRunMs: number[];
  realRunMs: number;
  realPassMs: number;
  dryPassMs: number[];
  reloadMs: number[];
  reloadRules: number;
}

/** `dir`: seed an fs store there (durable writes: minutes for 10,000 tags) instead of memory. */
export async function benchRetention(
  tags = 10_000,
  log = console.log,
  dir?: string,
): Promise<RetentionFigures> {
  const { settings } = readConfigFile("bench.yaml", RULES);
  const policies = policiesFrom({ sections: settings.sections });
  log(`retention: seeding ${tags} tags over a simulated week (${dir ? "fs" : "memory"})…`);
  const { store, now } = await seed(tags, dir);
  const pass = (dryRun: boolean) =>
    runGc(store.state, {
      grace: 0,
      untagged: false,
      dryRun,
      now,
      retention: (repositories, context) => applyRetention(store, policies, repositories, context),
    });
  const dryRunMs: number[] = [];
  const dryPassMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const report = await pass(true);
    dryRunMs.push(report.retention!.durationMs);
    dryPassMs.push(report.durationMs);
  }
  const real = await pass(false);
  const deletions = real.retention!.deletions;
  const figures: RetentionFigures = {
    tags,
    deletedTags: deletions.filter((d) => d.kind === "tag").length,
    deletedManifests: deletions.filter((d) => d.kind === "manifest").length,
    dryRunMs,
    dryPassMs,
    realRunMs: real.retention!.durationMs,
    realPassMs: real.durationMs,
    reloadMs: [],
    reloadRules: 0,
  };
  log(
    `retention over ${tags} tags: deletes ${figures.deletedTags} tags and ` +
      `${figures.deletedManifests} manifests in ${figures.realRunMs} ms (GC pass around it ` +
      `${figures.realPassMs} ms); dry run ${median(dryRunMs)} ms (pass ${median(dryPassMs)} ms)`,
  );
  Object.assign(figures, await benchReload(log));
  return figures;
}

/** Reloads of a config file with an access policy and 100 rules of each kind, in process. */
async function benchReload(log: (line: string) => void) {
  const dir = await Deno.makeTempDir({ prefix: "bench-reload-" });
  const file = `${dir}/registry.yaml`;
  const rules = 100;
  const users = `${dir}/htpasswd`;
  await Deno.writeTextFile(users, `u0:${bcrypt.hashSync("pw", 4).replace(/^\$2[ab]\$/, "$2y$")}\n`);
  const lines = ["storage: memory", `htpasswd: ${users}`, "access-policy:", "  rules:"];
  for (let i = 0; i < rules; i++) {
    lines.push(`    - {users: ["u${i}"], repositories: ["team-${i}/**"], actions: ["*"]}`);
  }
  lines.push("retention:");
  for (let i = 0; i < rules; i++) lines.push(`  - {repositories: "ci-${i}/**", keep-last: 10}`);
  lines.push("immutable-tags:");
  for (let i = 0; i < rules; i++) lines.push(`  - {repositories: "rel-${i}/**", tags: "^v"}`);
  lines.push("quotas:");
  for (let i = 0; i < rules; i++) lines.push(`  - {repositories: "team-${i}/**", max-bytes: 10G}`);
  await Deno.writeTextFile(file, lines.join("\n") + "\n");
  const args = ["--config", file];
  const read = (path: string) => Deno.readTextFile(path);
  const load = async () => {
    const command = await loadCommand(args, {}, read);
    if (command.kind !== "serve") throw new Error(JSON.stringify(command));
    return command.config;
  };
  const initial = await load();
  const auth = await createAuth(initial);
  const server = await startServer({
    ...initial,
    auth,
    port: 0,
    host: "127.0.0.1",
    driver: createMemoryDriver(),
    settings: { initial, load },
  });
  const reloadMs: number[] = [];
  try {
    for (let i = 0; i < 21; i++) {
      const outcome = await server.reload();
      if (!outcome.ok) throw new Error(outcome.error);
      if (i > 0) reloadMs.push(outcome.durationMs); // the first warms the parser up
    }
  } finally {
    await server.shutdown();
    auth?.close?.();
    await Deno.remove(dir, { recursive: true });
  }
  log(
    `reload of a config with ${rules} rules of each kind: median ${median(reloadMs)} ms, ` +
      `max ${Math.max(...reloadMs)} ms (${reloadMs.length} reloads)`,
  );
  return { reloadMs, reloadRules: rules };
}

if (import.meta.main) {
  const dir = Deno.args[1] === "fs"
    ? await Deno.makeTempDir({ prefix: "bench-retention-" })
    : undefined;
  try {
    await benchRetention(Number(Deno.args[0] ?? 10_000), console.log, dir);
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true });
  }
}
