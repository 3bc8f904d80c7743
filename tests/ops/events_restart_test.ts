// Durable events: a registry SIGKILLed with events undelivered (and deliveries in flight) delivers
// every one of them after its restart, in push order; duplicates only ever repeat an event's id.

import type { RegistryEvent } from "../../src/ops/events/event.ts";
import {
  assert,
  assertEquals,
  buildImage,
  OCI_MANIFEST,
  pushBuiltImage,
  randomBytes,
  registryClient,
  spawnRegistry,
  tempDir,
} from "../helpers.ts";
import { startReceiver } from "./receiver.ts";

Deno.test("events: kill -9 with events pending and deliveries in flight loses none", async () => {
  await using dir = await tempDir();
  await using receiver = startReceiver();
  receiver.refuse(true);
  const config = `${dir.path}/notify.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      endpoints: [{ name: "hook", url: receiver.url, backoff: "50ms", maxBackoff: "200ms" }],
    }),
  );
  const args = ["--data-dir", `${dir.path}/data`, "--notify-config", config];
  const pushed: string[] = [];
  {
    await using registry = await spawnRegistry(args);
    const client = registryClient(registry.url);
    const image = buildImage([randomBytes(200, 11)], 11);
    await pushBuiltImage(client, "survivor", "t0", image);
    pushed.push("t0");
    for (let i = 1; i < 40; i++) {
      const res = await client.pushManifest("survivor", `t${i}`, image.manifest, OCI_MANIFEST);
      assertEquals(res.status, 201);
      pushed.push(`t${i}`);
    }
    await receiver.waitForRefusals(2);
    // Accept slowly, so that some deliveries are in flight when the process dies.
    receiver.delay(30);
    receiver.refuse(false);
    await receiver.waitFor(5);
    const status = await registry.stop("SIGKILL");
    assertEquals(status.signal, "SIGKILL");
  }
  const beforeRestart = receiver.accepted().length;
  assert(beforeRestart < 42, `events were still pending at the kill (${beforeRestart} delivered)`);
  receiver.delay(0);
  {
    await using _registry = await spawnRegistry(args);
    await receiver.waitForIds(42);
    const events = receiver.accepted();
    const byId = new Map<string, RegistryEvent>();
    for (const event of events) {
      const first = byId.get(event.id);
      if (first) assertEquals(event, first, "a duplicate repeats its event exactly");
      else byId.set(event.id, event);
    }
    const unique = [...byId.values()];
    assertEquals(unique.length, 42, "2 blob pushes and 40 manifest pushes");
    assertEquals(unique.filter((e) => e.target.tag).map((e) => e.target.tag), pushed, "in order");
  }
});
