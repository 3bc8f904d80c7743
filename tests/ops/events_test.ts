// Webhook events end to end: a receiver records what the registry posts for pushes, pulls, deletes
// and mounts; refusals delay but lose nothing; the bound drops the oldest; storage failures fail.

import { EVENTS_MEDIA_TYPE, type RegistryEvent } from "../../src/ops/events/event.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  buildImage,
  digest,
  DRIVER_KINDS,
  OCI_MANIFEST,
  pushBuiltImage,
  randomBytes,
  withServer,
} from "../helpers.ts";
import { fastNotify, startReceiver } from "./receiver.ts";

/** The fields a test compares: what the event says happened to what. */
const summary = (event: RegistryEvent) => ({
  action: event.action,
  repository: event.target.repository,
  ...(event.target.digest && { digest: event.target.digest }),
  ...(event.target.tag && { tag: event.target.tag }),
  ...(event.target.mediaType && { mediaType: event.target.mediaType }),
  ...(event.target.size !== undefined && { size: event.target.size }),
  ...(event.target.fromRepository && { from: event.target.fromRepository }),
});

const BLOB = "application/octet-stream";

for (const kind of DRIVER_KINDS) {
  Deno.test(`${kind}: events: pushes, pulls, mounts and deletes reach the receiver in distribution's format`, async () => {
    await using receiver = startReceiver();
    await using s = await withServer(kind, { ops: { notify: fastNotify(receiver.url) } });
    const { client } = s;
    const image = buildImage([randomBytes(3000, 7), randomBytes(500, 8)], 7);
    const [config, layer1, layer2] = [image.config, ...image.layers];
    // Config and first layer whole (POST ?digest=), the second chunked (POST, PATCH, PUT).
    assertEquals((await client.pushBlob("team/app", config)).status, 201);
    assertEquals((await client.pushBlob("team/app", layer1)).status, 201);
    assertEquals((await client.pushBlobChunked("team/app", layer2, 200)).status, 201);
    const put = await client.pushManifest("team/app", "v1", image.manifest, OCI_MANIFEST);
    assertEquals(put.status, 201);
    // Pulls: a manifest GET by tag, a HEAD (not a pull), a blob GET, a ranged GET past byte 0.
    assertEquals(
      (await client.get("/v2/team/app/manifests/v1", { accept: OCI_MANIFEST })).status,
      200,
    );
    assertEquals((await client.head("/v2/team/app/manifests/v1")).status, 200);
    assertEquals((await client.get(`/v2/team/app/blobs/${digest(layer1)}`)).status, 200);
    const ranged = await client.get(`/v2/team/app/blobs/${digest(layer1)}`, { range: "bytes=10-" });
    assertEquals(ranged.status, 206);
    // A refused request makes no event.
    assertEquals((await client.get("/v2/team/app/manifests/missing")).status, 404);
    // A mount into another repository, then deletes: tag, manifest by digest, blob.
    const mount = await client.request(
      "POST",
      `/v2/other/app/blobs/uploads/?mount=${digest(layer1)}&from=team/app`,
    );
    assertEquals(mount.status, 201);
    // The web UI's delete button deletes through its own route: an event all the same.
    const again = await client.pushManifest("team/app", "v2", image.manifest, OCI_MANIFEST);
    assertEquals(again.status, 201);
    const ui = await client.request("DELETE", "/ui/api/r/team/app/manifests/v2", {
      headers: { authorization: "Basic eDp4" }, // auth is off; a credential stands for CSRF's token
    });
    assertEquals(ui.status, 202, ui.text);
    assertEquals((await client.request("DELETE", "/v2/team/app/manifests/v1")).status, 202);
    assertEquals(
      (await client.request("DELETE", `/v2/team/app/manifests/${image.digest}`)).status,
      202,
    );
    assertEquals(
      (await client.request("DELETE", `/v2/team/app/blobs/${digest(config)}`)).status,
      202,
    );

    // HEAD, a GET from past byte 0 and refusals make none: they would show in the middle.
    const events = await receiver.waitFor(12);
    assertEquals(events.map(summary), [
      {
        action: "push",
        repository: "team/app",
        digest: digest(config),
        mediaType: BLOB,
        size: config.length,
      },
      {
        action: "push",
        repository: "team/app",
        digest: digest(layer1),
        mediaType: BLOB,
        size: layer1.length,
      },
      {
        action: "push",
        repository: "team/app",
        digest: digest(layer2),
        mediaType: BLOB,
        size: layer2.length,
      },
      {
        action: "push",
        repository: "team/app",
        digest: image.digest,
        tag: "v1",
        mediaType: OCI_MANIFEST,
        size: image.manifest.length,
      },
      {
        action: "pull",
        repository: "team/app",
        digest: image.digest,
        tag: "v1",
        mediaType: OCI_MANIFEST,
        size: image.manifest.length,
      },
      {
        action: "pull",
        repository: "team/app",
        digest: digest(layer1),
        mediaType: BLOB,
        size: layer1.length,
      },
      {
        action: "mount",
        repository: "other/app",
        digest: digest(layer1),
        mediaType: BLOB,
        size: layer1.length,
        from: "team/app",
      },
      {
        action: "push",
        repository: "team/app",
        digest: image.digest,
        tag: "v2",
        mediaType: OCI_MANIFEST,
        size: image.manifest.length,
      },
      { action: "delete", repository: "team/app", tag: "v2" },
      { action: "delete", repository: "team/app", tag: "v1" },
      { action: "delete", repository: "team/app", digest: image.digest },
      { action: "delete", repository: "team/app", digest: digest(config) },
    ]);

    const push = events[3];
    assertMatch(push.id, /^[0-9a-f-]{36}$/);
    assert(!Number.isNaN(Date.parse(push.timestamp)), "an RFC 3339 timestamp");
    assertEquals(push.target.length, push.target.size, "length repeats size");
    assertEquals(push.target.url, `${s.url}/v2/team/app/manifests/${image.digest}`);
    assertEquals(push.request.method, "PUT");
    assertEquals(push.request.addr, "127.0.0.1");
    assertEquals(push.request.host, new URL(s.url).host);
    assertEquals(push.request.id, put.headers.get("x-request-id"));
    assertEquals(push.actor, {}, "no actor without auth");
    assertMatch(push.source.addr, /:\d+$/);
    assertEquals(new Set(events.map((e) => e.source.instanceID)).size, 1);
    assertEquals(new Set(events.map((e) => e.id)).size, events.length, "ids are unique");
    assertEquals(receiver.posts[0].contentType, EVENTS_MEDIA_TYPE);
    assertEquals(receiver.posts.map((p) => p.events.length), events.map(() => 1), "one per POST");
  });
}

Deno.test("events: a receiver that refuses for a while gets everything, in order, once it accepts", async () => {
  await using receiver = startReceiver();
  receiver.refuse(true);
  await using s = await withServer("fs", { ops: { notify: fastNotify(receiver.url) } });
  const tags: string[] = [];
  const image = buildImage([randomBytes(100, 3)], 3);
  await pushBuiltImage(s.client, "ordered", "t0", image);
  tags.push("t0");
  await receiver.waitForRefusals(3);
  for (let i = 1; i < 30; i++) {
    const res = await s.client.pushManifest("ordered", `t${i}`, image.manifest, OCI_MANIFEST);
    assertEquals(res.status, 201, "pushes are answered while the receiver refuses");
    tags.push(`t${i}`);
  }
  receiver.refuse(false);
  const events = (await receiver.waitFor(2 + tags.length)).filter((e) => e.target.tag);
  assertEquals(events.map((e) => e.target.tag), tags, "every manifest push, in push order");
  assertEquals(new Set(events.map((e) => e.id)).size, events.length, "no duplicate");
  const refused = receiver.posts.filter((p) => p.status >= 300);
  assert(refused.length >= 3, "the first event was refused and retried");
  assertEquals(refused[0].events[0].id, receiver.accepted()[0].id, "retried with the same id");
});

Deno.test("events: filters pick actions, media types and repositories per endpoint", async () => {
  await using all = startReceiver();
  await using some = startReceiver();
  const notify = fastNotify(all.url);
  notify.endpoints.push({
    ...notify.endpoints[0],
    name: "manifests-in-team",
    url: some.url,
    batch: 10,
    include: { actions: new Set(["push", "delete"]), repositories: [/^team\/.*$/] },
    ignore: { mediaTypes: new Set([BLOB]) },
    headers: { authorization: "Bearer hook-secret" },
  });
  await using s = await withServer("memory", { ops: { notify, traceparent: true } });
  const image = buildImage([randomBytes(100, 4)], 4);
  await pushBuiltImage(s.client, "team/one", "a", image);
  await pushBuiltImage(s.client, "elsewhere", "b", image);
  await s.client.get("/v2/team/one/manifests/a", {
    traceparent: `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01`,
  });
  await s.client.request("DELETE", "/v2/team/one/manifests/a");
  const everything = await all.waitFor(8);
  const filtered = await some.waitFor(2);
  assertEquals(filtered.map(summary).map((e) => `${e.action} ${e.repository} ${e.tag}`), [
    "push team/one a",
    "delete team/one a",
  ]);
  assertEquals(some.posts[0].authorization, "Bearer hook-secret", "the endpoint's headers");
  const pull = all.posts.find((p) => p.events[0].action === "pull")!;
  assertMatch(pull.traceparent, new RegExp(`^00-${"ab".repeat(16)}-[0-9a-f]{16}-01$`));
  assertEquals(everything.length, 8);
});

Deno.test("events: past the outbox's bound the oldest are dropped, counted in the metrics", async () => {
  await using receiver = startReceiver();
  receiver.refuse(true);
  await using s = await withServer("memory", {
    ops: { notify: fastNotify(receiver.url, { maxPending: 5 }) },
  });
  const image = buildImage([randomBytes(100, 5)], 5);
  await pushBuiltImage(s.client, "bounded", "t0", image);
  await receiver.waitForRefusals(1);
  for (let i = 1; i < 12; i++) {
    assertEquals(
      (await s.client.pushManifest("bounded", `t${i}`, image.manifest, OCI_MANIFEST)).status,
      201,
    );
  }
  const metrics = (await s.client.get("/metrics")).text;
  const dropped = Number(
    /registry_events_dropped_total\{endpoint="test"\} (\d+)/.exec(metrics)?.[1],
  );
  assertEquals(/registry_events_pending\{endpoint="test"\} (\d+)/.exec(metrics)?.[1], "5");
  receiver.refuse(false);
  const delivered = await receiver.waitFor(5);
  const tags = delivered.map((e) => e.target.tag);
  assertEquals(tags.slice(-5), ["t7", "t8", "t9", "t10", "t11"], "the newest five survive");
  // The oldest one may have been in flight when it was dropped: delivered once more at most.
  assertEquals(dropped, 14 - 5, "events past the bound: 3 blobs + 11 manifests - 5 kept");
});

/** Memory storage whose writes under `_events/` fail while `failing` is on. */
function eventsFailingDriver(): { driver: StorageDriver; failing: { on: boolean } } {
  const inner = createMemoryDriver();
  const failing = { on: false };
  const driver: StorageDriver = {
    ...inner,
    kind: inner.kind,
    put(key, data, options) {
      if (failing.on && key.startsWith("_events/")) {
        return Promise.reject(new Error("EIO: disk gone"));
      }
      return inner.put(key, data, options);
    },
  };
  return { driver, failing };
}

Deno.test("events: a request whose event cannot be stored is answered 503, never 2xx", async () => {
  await using receiver = startReceiver();
  const { driver, failing } = eventsFailingDriver();
  await using s = await withServer("memory", { driver, ops: { notify: fastNotify(receiver.url) } });
  const image = buildImage([randomBytes(100, 6)], 6);
  await pushBuiltImage(s.client, "durable", undefined, image);
  failing.on = true;
  const refused = await s.client.pushManifest("durable", "t", image.manifest, OCI_MANIFEST);
  assertEquals(refused.status, 503, refused.text);
  assertEquals(refused.json().errors[0].code, "UNAVAILABLE");
  failing.on = false;
  assertEquals(
    (await s.client.pushManifest("durable", "t", image.manifest, OCI_MANIFEST)).status,
    201,
  );
  const events = await receiver.waitFor(4);
  assertEquals(events.filter((e) => e.target.tag === "t").length, 1, "the retried push's event");
});
