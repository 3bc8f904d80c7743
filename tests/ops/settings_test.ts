// Webhook settings: the --notify-config JSON parsed and checked (errors name the file and key), the
// filters, the outbox's batch names, and the event module's routes held to the route table.

import { EVENT_ROUTES } from "../../src/ops/events/event.ts";
import { parseBatchName } from "../../src/ops/events/outbox.ts";
import { notifySettings, wants } from "../../src/ops/events/settings.ts";
import { traceOf, traceparent } from "../../src/ops/trace.ts";
import { ROUTES } from "../../src/routes.ts";
import { assert, assertEquals, assertThrows } from "../helpers.ts";

const file = (value: unknown) => ({ path: "notify.json", text: JSON.stringify(value) });

Deno.test("notify settings: --notify URLs and a config file's endpoints, with defaults", () => {
  const settings = notifySettings(
    ["http://a.example/hook"],
    file({
      maxPending: 5000,
      endpoints: [{
        name: "ci",
        url: "https://ci.example/events",
        headers: { Authorization: ["Bearer x"], "X-Env": "prod" },
        timeout: "500ms",
        backoff: "2s",
        maxBackoff: "1m",
        batch: 10,
        actions: ["push", "delete"],
        repositories: ["team/**"],
        ignore: { mediaTypes: ["application/octet-stream"] },
      }],
    }),
  );
  assertEquals(settings.maxPending, 5000);
  const [simple, ci] = settings.endpoints;
  assert(/^url-[0-9a-f]{12}$/.test(simple.name), simple.name);
  assertEquals(
    [simple.timeout, simple.backoff, simple.maxBackoff, simple.batch],
    [5000, 1000, 300_000, 1],
  );
  assertEquals(ci.headers, { Authorization: "Bearer x", "X-Env": "prod" });
  assertEquals([ci.timeout, ci.backoff, ci.maxBackoff, ci.batch], [500, 2000, 60_000, 10]);
  assertEquals(notifySettings(["http://a.example/hook"]).endpoints[0].name, simple.name, "stable");
});

Deno.test("notify settings: mistakes are one line naming the file and the key", () => {
  const cases: [unknown, string][] = [
    [{ endpoints: [{ url: "ftp://x" }] }, 'notify.json: endpoints[0] "url": invalid URL'],
    [{ endpoints: [{ url: "http://x", timeout: "soon" }] }, '"timeout": expected a duration'],
    [{ endpoints: [{ url: "http://x", actions: ["pul"] }] }, '"actions": "pul"'],
    [{ endpoints: [{ url: "http://x", retries: 3 }] }, 'unknown key "retries"'],
    [{ endpoints: [{ url: "http://x", name: "_hidden" }] }, '"name": "_hidden"'],
    [{ endpoints: [{ url: "http://x", batch: 1000 }] }, '"batch": at most 100'],
    [{ endpoints: [{ url: "http://x" }, { url: "http://x" }] }, "two notification endpoints named"],
    [{ maxPending: 10 }, '"maxPending" must be at least 100'],
    [{ endpoint: [] }, 'unknown key "endpoint"'],
  ];
  for (const [value, message] of cases) {
    assertThrows(() => notifySettings([], file(value)), Error, message);
  }
  assertThrows(() => notifySettings([], { path: "n.json", text: "{" }), Error, "n.json: not JSON");
  assertThrows(() => notifySettings(["localhost:5000"]), Error, "--notify: invalid URL");
});

Deno.test("notify filters: included actions, media types and repositories, minus ignored ones", () => {
  const [endpoint] = notifySettings(
    [],
    file({
      endpoints: [{
        url: "http://x",
        actions: ["push", "delete"],
        mediaTypes: ["application/vnd.oci.image.manifest.v1+json"],
        repositories: ["team/*"],
        ignore: { repositories: ["team/secret"] },
      }],
    }),
  ).endpoints;
  const event = (action: string, repository: string, mediaType?: string) => ({
    action,
    target: { repository, mediaType },
  });
  const manifest = "application/vnd.oci.image.manifest.v1+json";
  assert(wants(endpoint, event("push", "team/app", manifest)));
  assert(wants(endpoint, event("delete", "team/app")), "a delete has no media type: it passes");
  assert(!wants(endpoint, event("pull", "team/app", manifest)), "action not listed");
  assert(!wants(endpoint, event("push", "team/app", "application/octet-stream")), "media type");
  assert(!wants(endpoint, event("push", "team/a/b", manifest)), "* stays in one component");
  assert(!wants(endpoint, event("push", "team/secret", manifest)), "ignored repository");
  const all = notifySettings(["http://y"]).endpoints[0];
  assert(wants(all, event("pull", "x", "application/octet-stream")), "no filter: everything");
});

Deno.test("outbox batch names sort oldest first and carry their count", () => {
  assertEquals(parseBatchName("1795944133000-0000000001-0a1b2c3d-7"), {
    name: "1795944133000-0000000001-0a1b2c3d-7",
    at: 1795944133000,
    count: 7,
  });
  assertEquals(parseBatchName("stray"), undefined);
});

Deno.test("event routes: every spec id the events module names is in the route table", () => {
  const specs = new Set(ROUTES.map((route) => route.spec));
  for (const spec of EVENT_ROUTES) assert(specs.has(spec), `route ${spec} exists`);
});

Deno.test("traceparent: continued when valid, a new trace otherwise", () => {
  const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const continued = traceOf(parent);
  assertEquals(continued.traceId, "0af7651916cd43dd8448eb211c80319c");
  assertEquals(continued.parentId, "b7ad6b7169203331");
  assert(continued.spanId !== "b7ad6b7169203331" && /^[0-9a-f]{16}$/.test(continued.spanId));
  assertEquals(traceparent(continued), `00-${continued.traceId}-${continued.spanId}-01`);
  for (
    const bad of [
      null,
      "garbage",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      `00-${"0".repeat(32)}-b7ad6b7169203331-01`,
      `00-0af7651916cd43dd8448eb211c80319c-${"0".repeat(16)}-01`,
      `${parent}-extra`,
    ]
  ) {
    const fresh = traceOf(bad);
    assert(fresh.traceId !== continued.traceId && fresh.parentId === undefined, String(bad));
  }
  assertEquals(
    traceOf(`01-${parent.slice(3)}-future`).traceId,
    continued.traceId,
    "a later version",
  );
});
