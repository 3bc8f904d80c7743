// Reloads (src/settings/reload.ts): all parts switch or none; SIGHUP on a registry subprocess while
// pushes run fails no request; a bad file leaves the settings in force; read-only on and off.

import { parseCommand } from "../../src/config.ts";
import { createReloader, needsRestart } from "../../src/settings/reload.ts";
import { htpasswdLine } from "../auth/fixtures.ts";
import {
  assert,
  assertEquals,
  buildImage,
  digest,
  randomBytes,
  type RegistryClient,
  registryClient,
  spawnRegistry,
  tempDir,
} from "../helpers.ts";

const config = (args: string[]) => {
  const parsed = parseCommand(args, {});
  if (parsed.kind !== "serve") throw new Error(JSON.stringify(parsed));
  return parsed.config;
};

Deno.test("reload: every part prepares before any switches; one failure switches none", async () => {
  const thrown: string[] = [];
  let failing = false;
  const parts = ["a", "b", "c"].map((name) => ({
    name,
    prepare: () => {
      if (name === "b" && failing) return Promise.reject(new Error("b: bad file\nsecond line"));
      return Promise.resolve(() => void thrown.push(name));
    },
  }));
  let next = config(["--read-only"]);
  const reload = createReloader({ load: () => Promise.resolve(next), parts, initial: config([]) });
  assertEquals((await reload()).ok, true);
  assertEquals(thrown, ["a", "b", "c"]);
  failing = true;
  const refused = await reload();
  assertEquals([refused.ok, refused.error], [false, "b: bad file"]);
  assertEquals(thrown, ["a", "b", "c"], "nothing switched");
  failing = false;
  next = config(["--port", "6000", "--storage", "memory"]);
  const restart = await reload();
  assertEquals([restart.ok, restart.restartNeeded], [true, ["port", "storage"]]);
  assertEquals(needsRestart(config([]), config(["--read-only", "--no-delete"])), ["no-delete"]);
  const failedLoad = await createReloader({
    load: () => Promise.reject(new Error("registry.yaml:3:1: unknown key")),
    parts,
    initial: config([]),
  })();
  assertEquals([failedLoad.ok, failedLoad.error], [false, "registry.yaml:3:1: unknown key"]);
});

const POLICY = (users: string[]) => `
access-policy:
  rules:
    - users: ${JSON.stringify(users)}
      repositories: ["**"]
      actions: ["*"]
`;

/** Two good files that differ in everything reloadable, but both let the pushers push. */
const GOOD = [
  POLICY(["ci", "admin"]) + `
quotas:
  - repositories: team/**
    max-bytes: 1G
immutable-tags:
  - repositories: releases/**
retention:
  - repositories: ci/**
    keep-last: 5
`,
  POLICY(["admin", "ci"]) + `
quotas:
  - repositories: team/**
    max-bytes: 2G
  - repositories: other/**
    max-bytes: 1M
immutable-tags:
  - repositories: team/**
    tags: ^v
retention:
  - repositories: ci/**
    older-than: 30d
`,
];

async function waitFor(lines: string[], text: string, count: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (lines.filter((line) => line.includes(text)).length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${count}× "${text}" in the log`);
}

async function push(client: RegistryClient, name: string, tag: string, seed: number) {
  const image = buildImage([randomBytes(2000, seed)], seed);
  const statuses: number[] = [];
  for (const blob of [image.config, ...image.layers]) {
    statuses.push((await client.pushBlob(name, blob)).status);
  }
  statuses.push((await client.pushManifest(name, tag, image.manifest)).status);
  return { statuses, digest: image.digest };
}

Deno.test("reload: SIGHUP while pushes run fails no request; a bad file keeps the old settings", async () => {
  await using dir = await tempDir("registry-reload-");
  const file = `${dir.path}/registry.yaml`;
  const users = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(users, `${htpasswdLine("ci", "pw")}\n${htpasswdLine("admin", "pw")}\n`);
  const base = `storage: memory\nhtpasswd: ${users}\n`;
  await Deno.writeTextFile(file, base + GOOD[0]);
  await using registry = await spawnRegistry(["--config", file]);
  const credentials = { authorization: `Basic ${btoa("ci:pw")}` };
  const client = registryClient(registry.url, credentials);

  // Four pushers and a puller, non-stop, while the file flips between two good versions.
  let running = true;
  const failures: string[] = [];
  let requests = 0;
  const pushers = [0, 1, 2, 3].map(async (k) => {
    for (let n = 0; running; n++) {
      const { statuses } = await push(client, `team/app-${k}`, `t-${n}`, k * 100_000 + n);
      requests += statuses.length;
      if (statuses.some((s) => s !== 201)) failures.push(`team/app-${k}:t-${n} ${statuses}`);
      const pulled = await client.get(`/v2/team/app-${k}/manifests/t-${n}`);
      requests++;
      if (pulled.status !== 200) failures.push(`pull team/app-${k}:t-${n} ${pulled.status}`);
    }
  });
  const reloads = 20;
  for (let i = 1; i <= reloads; i++) {
    await Deno.writeTextFile(file, base + GOOD[i % 2]);
    Deno.kill(registry.pid, "SIGHUP");
    await waitFor(registry.lines, '"config reloaded"', i);
  }
  running = false;
  await Promise.all(pushers);
  assertEquals(failures, []);
  assert(requests > reloads, `${requests} requests during ${reloads} reloads`);
  const took = registry.lines.filter((l) => l.includes('"config reloaded"'))
    .map((l) => JSON.parse(l).duration_ms as number).sort((a, b) => a - b);
  console.log(
    `${reloads} reloads during ${requests} requests; reload took median ${
      took[took.length >> 1]
    } ms, max ${took[took.length - 1]} ms`,
  );

  // A bad file: refused with a log line, the settings in force stay (pushes still work).
  await Deno.writeTextFile(file, base + "retention:\n  - repositories: ci/**\n    keep-lats: 1\n");
  Deno.kill(registry.pid, "SIGHUP");
  await waitFor(registry.lines, '"config not reloaded, the settings in force stay"', 1);
  const refusal = JSON.parse(registry.lines.find((l) => l.includes("config not reloaded"))!);
  assertEquals(
    refusal["error.message"],
    `${file}:4:5: retention #1: the rule deletes nothing: give keep-last, older-than, ` +
      `not-pulled-for, untagged-after or several (and 1 more: simple-registry config check ${file})`,
  );
  assertEquals((await push(client, "team/app-0", "after-bad", 1)).statuses, [201, 201, 201]);

  // Read-only on: writes are 405, reads go on; a bad file then keeps it read-only.
  await Deno.writeTextFile(file, base + GOOD[0] + "read-only: true\n");
  Deno.kill(registry.pid, "SIGHUP");
  await waitFor(registry.lines, '"config reloaded"', reloads + 1);
  const refused = await push(client, "team/app-0", "read-only", 2);
  assertEquals(refused.statuses, [405, 405, 405]);
  assertEquals((await client.get("/v2/team/app-0/manifests/after-bad")).status, 200);
  await Deno.writeTextFile(file, base + "read-only: maybe\n");
  Deno.kill(registry.pid, "SIGHUP");
  await waitFor(registry.lines, '"config not reloaded, the settings in force stay"', 2);
  assertEquals((await push(client, "team/app-0", "still", 3)).statuses, [405, 405, 405]);
  // And off again: an access policy change applies too (admin only now: ci is denied).
  await Deno.writeTextFile(file, base + POLICY(["admin"]));
  Deno.kill(registry.pid, "SIGHUP");
  await waitFor(registry.lines, '"config reloaded"', reloads + 2);
  assertEquals((await client.get("/v2/team/app-0/manifests/after-bad")).status, 403);
  const admin = registryClient(registry.url, { authorization: `Basic ${btoa("admin:pw")}` });
  const pushed = await push(admin, "team/app-0", "writable", 4);
  assertEquals(pushed.statuses, [201, 201, 201]);
  assertEquals(
    (await admin.get("/v2/team/app-0/manifests/writable")).headers.get("docker-content-digest"),
    pushed.digest,
  );
  assert(digest(new Uint8Array()) !== "", "helpers loaded");
});
