// GC (src/gc.ts): shared layers survive, exactly the unreferenced go, grace and pins spare,
// untagged manifests, indexes and referrers, dry runs, upload expiry, the online loop, the CLI.

import { parseCommand } from "../../src/config.ts";
import { formatDuration, parseDuration } from "../../src/duration.ts";
import { runGc } from "../../src/maintenance/gc.ts";
import { parseDigest } from "../../src/grammar.ts";
import { pin, unpin } from "../../src/store/pins.ts";
import { startServer } from "../../src/server.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { blobPath } from "../../src/storage/paths.ts";
import {
  assert,
  assertEquals,
  bytes,
  descriptorOf,
  digest,
  imageIndex,
  imageManifest,
  jsonBytes,
  OCI_INDEX,
  OCI_MANIFEST,
  randomBytes,
  type RegistryClient,
  registryClient,
  runMain,
  serverTest,
  snapshot,
  tempDir,
  withDigest,
  withServer,
} from "../helpers.ts";
import { buildImage, exists, pullImage, pushLayeredImage } from "./gc_helpers.ts";

const GRACE_0 = { grace: 0, untagged: false };

/** Lets the clock move on: what was written in the same millisecond as a pass counts as young. */
const tick = () => new Promise((r) => setTimeout(r, 5));

serverTest("gc frees exactly the blobs only a deleted image used", async (t) => {
  const base = [randomBytes(3000, 1), randomBytes(4000, 2)];
  const onlyA = randomBytes(5000, 3);
  const a = await pushLayeredImage(t.client, "team/a", "v1", [...base, onlyA], 10);
  const b = await pushLayeredImage(t.client, "team/b", "v1", [...base, randomBytes(6000, 4)], 20);

  const del = await t.client.request("DELETE", `/v2/team/a/manifests/${a.digest}`);
  assertEquals(del.status, 202);
  await tick();

  const report = await runGc(t.server.store.state, GRACE_0);
  // A's config, its own layer, and its manifest's bytes; the shared base stays.
  assertEquals(report.swept.blobs, 3, JSON.stringify(report));
  assertEquals(report.swept.bytes, a.config.length + onlyA.length + a.manifest.length);
  assertEquals(report.swept.links, 2); // team/a's links to its config and own layer
  assertEquals(report.swept.manifests, 0);
  for (const gone of [a.config, onlyA, a.manifest]) {
    assert(!await exists(t.driver, digest(gone)), "swept blob is gone");
  }
  for (const kept of [...base, ...b.layers, b.config, b.manifest]) {
    assert(await exists(t.driver, digest(kept)), "live blob stays");
  }
  assertEquals((await t.client.head(`/v2/team/a/blobs/${digest(onlyA)}`)).status, 404);
  // The base layers stay served by team/a too (still linked: B keeps them alive).
  assertEquals((await t.client.head(`/v2/team/a/blobs/${digest(base[0])}`)).status, 200);
  await pullImage(t.client, "team/b", "v1", b);

  await tick();

  const again = await runGc(t.server.store.state, GRACE_0);
  assertEquals(again.swept.blobs + again.swept.links + again.swept.manifests, 0);
  await pullImage(t.client, "team/b", "v1", b);
});

serverTest("gc spares everything younger than the grace", async (t) => {
  const a = await pushLayeredImage(t.client, "grace", "v1", [randomBytes(2000, 5)], 30);
  await t.client.request("DELETE", `/v2/grace/manifests/${a.digest}`);
  const orphan = randomBytes(1000, 6);
  assertEquals((await t.client.pushBlob("grace", orphan)).status, 201);
  const report = await runGc(t.server.store.state, { grace: 3_600_000, untagged: false });
  assertEquals(report.swept.blobs, 0);
  assert(report.spared >= 4, `spared ${report.spared}`);
  assert(await exists(t.driver, digest(orphan)));
  // With no grace the orphan (a layer whose manifest never came) goes too.
  await tick();

  const now = await runGc(t.server.store.state, GRACE_0);
  assertEquals(now.swept.blobs, 4);
  assert(!await exists(t.driver, digest(orphan)));
});

serverTest(
  "gc --gc-untagged sweeps unreachable manifests, keeps index children and referrers",
  async (t) => {
    const c = t.client;
    const old = await pushLayeredImage(c, "app", "v1", [randomBytes(2500, 7)], 40);
    const current = await pushLayeredImage(c, "app", "v1", [randomBytes(2600, 8)], 41); // moves v1
    // An index, tagged, over two children pushed by digest.
    const child1 = await pushLayeredImage(c, "app", undefined, [randomBytes(1000, 9)], 42);
    const child2 = await pushLayeredImage(c, "app", undefined, [randomBytes(1100, 10)], 43);
    const index = jsonBytes(imageIndex([child1.descriptor, child2.descriptor]));
    assertEquals((await c.pushManifest("app", "multi", index, OCI_INDEX)).status, 201);
    // A signature of the tagged image (kept) and one of the old image (goes with it).
    const signature = await pushReferrer(c, "app", current.descriptor, 44);
    const oldSignature = await pushReferrer(c, "app", old.descriptor, 45);

    await tick();

    const keep = await runGc(t.server.store.state, GRACE_0);
    assertEquals(keep.swept.manifests + keep.swept.blobs, 0, "untagged kept without the flag");

    await tick();

    const report = await runGc(t.server.store.state, { grace: 0, untagged: true });
    assertEquals(report.swept.manifests, 2, JSON.stringify(report)); // old and its signature
    // old: manifest bytes, config, layer; its signature: manifest bytes and payload (its config
    // is `{}`, shared with the live signature).
    assertEquals(report.swept.blobs, 5, JSON.stringify(report));
    assertEquals((await c.head(`/v2/app/manifests/${old.digest}`)).status, 404);
    assertEquals((await c.head(`/v2/app/manifests/${oldSignature}`)).status, 404);
    await pullImage(c, "app", "v1", current);
    await pullImage(c, "app", child1.digest, child1);
    await pullImage(c, "app", child2.digest, child2);
    assertEquals((await c.get("/v2/app/manifests/multi", { accept: "*/*" })).status, 200);
    assertEquals((await c.head(`/v2/app/manifests/${signature}`)).status, 200);
    const referrers = await c.get(`/v2/app/referrers/${current.digest}`);
    assertEquals(JSON.parse(referrers.text).manifests.length, 1);
    assertEquals(JSON.parse((await c.get(`/v2/app/referrers/${old.digest}`)).text).manifests, []);

    // Untagging the index frees it and its children on the next pass.
    assertEquals((await c.request("DELETE", "/v2/app/manifests/multi")).status, 202);
    await tick();

    const next = await runGc(t.server.store.state, { grace: 0, untagged: true });
    assertEquals(next.swept.manifests, 3);
    assertEquals((await c.head(`/v2/app/manifests/${child1.digest}`)).status, 404);
    await pullImage(c, "app", "v1", current);
  },
);

serverTest("gc --dry-run counts but deletes nothing", async (t) => {
  const a = await pushLayeredImage(t.client, "dry", "v1", [randomBytes(2000, 11)], 50);
  await t.client.request("DELETE", `/v2/dry/manifests/${a.digest}`);
  const session = await t.client.startUpload("dry");
  await t.client.request("PATCH", session, { body: randomBytes(500, 12) });
  await new Promise((r) => setTimeout(r, 20));
  const before = await snapshot(t.driver);
  const options = { grace: 0, untagged: true, uploadTtl: 1 };
  await tick();

  const dry = await runGc(t.server.store.state, { ...options, dryRun: true });
  assertEquals(await snapshot(t.driver), before, "a dry run changes nothing");
  assertEquals(dry.swept.blobs, 3);
  assertEquals(dry.uploads.expired, 1);
  assertEquals((await t.client.get(session)).status, 204, "the session is still there");
  await tick();

  const real = await runGc(t.server.store.state, options);
  assertEquals([real.swept, real.uploads], [dry.swept, dry.uploads], "the dry run told the truth");
});

serverTest("uploads idle longer than the TTL expire; active ones stay", async (t) => {
  // S3's Last-Modified has a one-second resolution: there the times are in seconds.
  const unit = t.kind === "s3" ? 1000 : 20;
  const idle = await t.client.startUpload("up");
  assertEquals((await t.client.request("PATCH", idle, { body: randomBytes(700, 13) })).status, 202);
  await new Promise((r) => setTimeout(r, unit * 3));
  const fresh = await t.client.startUpload("up");
  const report = await runGc(t.server.store.state, { ...GRACE_0, uploadTtl: unit * 2 });
  assertEquals(report.uploads, { expired: 1, bytes: 700 });
  assertEquals((await t.client.get(idle)).status, 404);
  assertEquals((await t.client.request("PATCH", idle, { body: bytes("x") })).status, 404);
  assertEquals((await t.client.get(fresh)).status, 204);
  // The fresh session still finishes.
  const data = randomBytes(900, 14);
  const put = await t.client.request("PUT", withDigest(fresh, digest(data)), { body: data });
  assertEquals(put.status, 201, put.text);
});

serverTest("a digest a push holds is never swept, and goes once released", async (t) => {
  const orphan = randomBytes(1500, 15);
  assertEquals((await t.client.pushBlob("pins", orphan)).status, 201);
  const d = parseDigest(digest(orphan))!;
  const registry = t.server.store.state;
  assert(await pin(registry, d, () => Promise.resolve(true)));
  await tick();

  const held = await runGc(registry, GRACE_0);
  assertEquals(held.swept.blobs, 0);
  assert(await exists(t.driver, d.value));
  await unpin(registry, [d]);
  await tick();

  const released = await runGc(registry, GRACE_0);
  assertEquals(released.swept.blobs, 1);
});

Deno.test("a manifest PUT racing a sweep keeps what it checked (gated revision write)", async () => {
  // The driver holds the revision write of the PUT until the GC pass is over: without pins the
  // pass would delete the layer the PUT has already checked, and the image would be broken.
  const memory = createMemoryDriver();
  const gate = Promise.withResolvers<void>();
  let gated = false;
  const driver: StorageDriver = {
    ...memory,
    async put(key, data) {
      if (key.includes("/_manifests/revisions/") && !gated) {
        gated = true;
        reached.resolve();
        await gate.promise;
      }
      return memory.put(key, data);
    },
  };
  const reached = Promise.withResolvers<void>();
  await using server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver,
  });
  const client = registryClient(server.url);
  const image = buildImage([randomBytes(2000, 19)], 80);
  for (const blob of [image.config, ...image.layers]) {
    assertEquals((await client.pushBlob("race", blob)).status, 201);
  }
  await new Promise((r) => setTimeout(r, 5)); // the blobs are now older than the pass
  const put = client.pushManifest("race", "v1", image.manifest, OCI_MANIFEST);
  await reached.promise; // the PUT checked its references and waits to write the revision
  const report = await runGc(server.store.state, GRACE_0);
  gate.resolve();
  assertEquals((await put).status, 201);
  assertEquals(report.swept.blobs, 0, JSON.stringify(report));
  await pullImage(client, "race", "v1", image);
  assertEquals((await runGc(server.store.state, GRACE_0)).swept.blobs, 0);
});

Deno.test("online gc loop runs from startServer and stops on shutdown", async () => {
  const driver = createMemoryDriver();
  await using server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver,
    gcInterval: 30,
    gcGrace: 0,
    uploadTtl: 86_400_000,
  });
  const client = registryClient(server.url);
  // With grace 0 a pass may sweep layers whose manifest has not arrived yet: the manifest PUT is
  // then MANIFEST_BLOB_UNKNOWN and a client pushes again (src/maintenance/gc.ts), as here.
  const push = async (tag: string, layer: Uint8Array<ArrayBuffer>, seed: number) => {
    for (let attempt = 1;; attempt++) {
      try {
        return await pushLayeredImage(client, "loop", tag, [layer], seed);
      } catch (error) {
        if (attempt === 20) throw error;
      }
    }
  };
  const a = await push("v1", randomBytes(1000, 16), 60);
  const b = await push("v2", randomBytes(1000, 17), 61);
  await client.request("DELETE", `/v2/loop/manifests/${a.digest}`);
  const deadline = Date.now() + 10_000;
  while (await exists(driver, digest(a.layers[0])) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert(!await exists(driver, digest(a.layers[0])), "the loop swept the deleted image's layer");
  await pullImage(client, "loop", "v2", b);
});

Deno.test("gc and fsck commands: dry run, then free, with counts and bytes", async () => {
  await using dir = await tempDir("registry-gc-cli-");
  let a;
  {
    await using t = await withServer("fs", { dataDir: dir.path });
    a = await pushLayeredImage(t.client, "cli", "v1", [randomBytes(2000, 18)], 70);
    await t.client.request("DELETE", `/v2/cli/manifests/${a.digest}`);
  }
  const run = async (...args: string[]) => {
    const out = await runMain([...args, "--data-dir", dir.path]);
    return { code: out.code, text: out.stdout };
  };
  const freed = a.config.length + a.layers[0].length + a.manifest.length;
  const dry = await run("gc", "--dry-run", "--gc-grace", "0s");
  assertEquals(dry.code, 0, dry.text);
  assert(dry.text.includes(`would free 0 manifests, 3 blobs (${freed} bytes)`), dry.text);
  assert(await Deno.stat(`${dir.path}/${blobPath(parseDigest(a.digest)!)}`).then(() => true));
  const real = await run("gc", "--gc-grace", "0s");
  assert(real.text.includes(`freed 0 manifests, 3 blobs (${freed} bytes)`), real.text);
  const fsck = await run("fsck");
  assertEquals(fsck.code, 0, fsck.text);
  assert(fsck.text.includes("0 problems"), fsck.text);
  const bad = await run("gc", "extra");
  assertEquals(bad.code, 2);
});

Deno.test("gc and fsck command lines parse strictly", () => {
  const gc = parseCommand(["gc", "--dry-run", "--gc-grace", "30s", "--gc-untagged"], {});
  assert(gc.kind === "gc" && gc.dryRun && gc.config.gcGrace === 30_000 && gc.config.gcUntagged);
  const fsck = parseCommand(["fsck", "--repair"], {});
  assert(fsck.kind === "fsck" && fsck.repair);
  const serve = parseCommand([], { REGISTRY_GC_INTERVAL: "1h", REGISTRY_UPLOAD_TTL: "2h" });
  assert(serve.kind === "serve");
  assertEquals([serve.config.gcInterval, serve.config.uploadTtl, serve.config.gcGrace], [
    3_600_000,
    7_200_000,
    3_600_000,
  ]);
  assertEquals(parseCommand(["--gc-interval", "5m"], { REGISTRY_GC_INTERVAL: "1h" }).kind, "serve");
  for (
    const args of [["frobnicate"], ["gc", "fsck"], ["--dry-run"], ["gc", "--repair"], [
      "--gc-grace",
      "soon",
    ]]
  ) {
    assertEquals(parseCommand(args, {}).kind, "error", args.join(" "));
  }
});

Deno.test("durations parse and print", () => {
  assertEquals(parseDuration("1h"), 3_600_000);
  assertEquals(parseDuration("30s"), 30_000);
  assertEquals(parseDuration("1h30m"), 5_400_000);
  assertEquals(parseDuration("250ms"), 250);
  assertEquals(parseDuration("0"), 0);
  assertEquals(parseDuration("1.5h"), 5_400_000);
  for (const bad of ["", "h", "10", "-1h", "1 h", "1y"]) {
    assertEquals(parseDuration(bad), undefined);
  }
  assertEquals(formatDuration(5_400_000), "1h30m");
  assertEquals(formatDuration(0), "0s");
});

async function pushReferrer(
  client: RegistryClient,
  name: string,
  subject: ReturnType<typeof descriptorOf>,
  seed: number,
): Promise<string> {
  const empty = bytes("{}");
  assertEquals((await client.pushBlob(name, empty)).status, 201);
  const payload = jsonBytes({ signature: seed });
  assertEquals((await client.pushBlob(name, payload)).status, 201);
  const manifest = jsonBytes(imageManifest({
    artifactType: "application/vnd.example.signature",
    config: descriptorOf("application/vnd.oci.empty.v1+json", empty),
    layers: [descriptorOf("application/octet-stream", payload)],
    subject,
  }));
  const res = await client.pushManifest(name, digest(manifest), manifest, OCI_MANIFEST);
  assertEquals(res.status, 201, res.text);
  return digest(manifest);
}
