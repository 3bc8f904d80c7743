// Notification endpoints change on a reload (SIGHUP): an added one gets the events that follow, a
// removed one gets no more, an unchanged one keeps delivering; the config file's section is read.

import { parseCommand } from "../../src/config.ts";
import { readConfigFile } from "../../src/settings/file.ts";
import { pushImage, withServer } from "../helpers.ts";
import { assert, assertEquals } from "../helpers.ts";
import { fastNotify, startReceiver } from "./receiver.ts";

/** The settings a config file gives, as main.ts reads them (no flags, no environment). */
function configOf(yaml: string) {
  const { settings, problems } = readConfigFile("registry.yaml", yaml);
  assertEquals(problems, []);
  const parsed = parseCommand([], {}, settings);
  if (parsed.kind !== "serve") throw new Error(JSON.stringify(parsed));
  return parsed.config;
}

const endpoint = (name: string, url: string) => `
  - name: ${name}
    url: ${url}
    backoff: 20ms
    maxBackoff: 100ms`;

Deno.test("reload: notification endpoints from the config file are added and removed without a restart", async () => {
  await using first = startReceiver();
  await using second = startReceiver();
  const before = configOf(`notifications:\n  endpoints:${endpoint("first", first.url)}\n`);
  const after = configOf(`notifications:\n  endpoints:${endpoint("second", second.url)}\n`);
  let next = before;
  await using s = await withServer("memory", {
    ops: { notify: fastNotify(first.url, { endpoints: before.sections.notifications!.endpoints }) },
    settings: { initial: before, load: () => Promise.resolve(next) },
  });
  await pushImage(s.client, "one", "v1", { layerCount: 1 });
  await first.waitFor(3); // config and layer blob pushes, and the manifest push
  next = after;
  const outcome = await s.server.reload();
  assert(outcome.ok, outcome.error);
  await pushImage(s.client, "two", "v1", { layerCount: 1, seed: 9 });
  const events = await second.waitFor(3);
  assertEquals(new Set(events.map((event) => event.target.repository)), new Set(["two"]));
  assert(
    first.accepted().every((event) => event.target.repository === "one"),
    "the removed endpoint gets nothing after the reload",
  );
});

Deno.test("config file: upstreams and notifications sections read with the same keys as their JSON files", () => {
  const config = configOf(`
upstreams:
  - name: dockerhub
    url: https://registry-1.docker.io
    ttl: 10m
notifications:
  maxPending: 500
  endpoints:${endpoint("hook", "http://127.0.0.1:9/events")}
`);
  assertEquals(config.sections.upstreams?.map((entry) => entry.raw.name), ["dockerhub"]);
  assertEquals(config.sections.notifications?.maxPending, 500);
  assertEquals(config.sections.notifications?.endpoints.map((e) => e.name), ["hook"]);
  const bad = readConfigFile("registry.yaml", "upstreams:\n  - name: x\n    url: ftp://x\n");
  assertEquals(bad.problems.length, 1);
  assert(/^registry\.yaml:2:\d+: .*upstreams\[0\]\.url/.test(bad.problems[0]), bad.problems[0]);
});
