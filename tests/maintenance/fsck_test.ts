// fsck (src/fsck.ts) and checked first pulls (src/api/blobs.ts): corrupt blobs are found,
// quarantined and never served; dangling tags and links are reported with their keys.

import { runFsck } from "../../src/maintenance/fsck.ts";
import { parseDigest } from "../../src/grammar.ts";
import { blobPath, quarantinePath, tagPath } from "../../src/storage/paths.ts";
import {
  assert,
  assertEquals,
  assertError,
  bytes,
  digest,
  imageIndex,
  jsonBytes,
  OCI_INDEX,
  randomBytes,
  runMain,
  serverTest,
  tempDir,
  withServer,
} from "../helpers.ts";
import { exists, pullImage, pushLayeredImage } from "./gc_helpers.ts";

/** The same length, other bytes: only a re-hash can tell. */
function flipped(data: Uint8Array): Uint8Array {
  const out = data.slice();
  out[out.length >> 1] ^= 0xff;
  return out;
}

serverTest("fsck is clean on a healthy store", async (t) => {
  const a = await pushLayeredImage(t.client, "ok/app", "v1", [randomBytes(3000, 1)], 1);
  const b = await pushLayeredImage(t.client, "ok/app", undefined, [randomBytes(3000, 2)], 2);
  const index = jsonBytes(imageIndex([a.descriptor, b.descriptor]));
  assertEquals((await t.client.pushManifest("ok/app", "multi", index, OCI_INDEX)).status, 201);
  const report = await runFsck(t.server.store.state);
  assertEquals(report.problems, []);
  assertEquals(report.blobs, 7); // 2 configs, 2 layers, 3 manifests
  assertEquals(report.manifests, 3);
  assertEquals(report.tags, 2);
});

serverTest(
  "fsck finds a corrupt blob; --repair quarantines it so it is never served",
  async (t) => {
    const layer = randomBytes(5000, 3);
    const image = await pushLayeredImage(t.client, "bad", "v1", [layer], 3);
    const d = parseDigest(digest(layer))!;
    await t.driver.put(blobPath(d), flipped(layer));

    const found = await runFsck(t.server.store.state);
    assertEquals(found.problems.map((p) => [p.kind, p.key]), [["blob.corrupt", blobPath(d)]]);
    assertEquals(found.problems[0].repaired, undefined);
    assert(await exists(t.driver, d.value), "without --repair nothing moves");

    const repaired = await runFsck(t.server.store.state, { repair: true });
    assertEquals(repaired.problems.map((p) => p.kind).sort(), [
      "blob.corrupt",
      "link.dangling",
      "manifest.blob_missing",
    ]);
    assert(!await exists(t.driver, d.value));
    assertEquals(digest(await t.driver.get(quarantinePath(d))), digest(flipped(layer)));
    assertEquals((await t.client.get(`/v2/bad/blobs/${d.value}`)).status, 404);
    // Only what cannot be repaired stays: the manifest needs a layer nobody has any more.
    const after = await runFsck(t.server.store.state);
    assertEquals(after.problems.map((p) => p.kind), ["manifest.blob_missing"]);
    // Pushing the layer again heals the image.
    assertEquals((await t.client.pushBlob("bad", layer)).status, 201);
    assertEquals((await runFsck(t.server.store.state)).problems, []);
    await pullImage(t.client, "bad", "v1", image);
  },
);

serverTest(
  "a first pull that finds bad bytes answers 404 and quarantines the blob",
  async (t) => {
    const layer = randomBytes(300_000, 4);
    await pushLayeredImage(t.client, "rot", "v1", [layer], 4);
    const d = parseDigest(digest(layer))!;
    await t.driver.put(blobPath(d), flipped(layer));
    if (t.driver.checksummed) {
      // S3 reads are trusted (README): bytes overwritten behind the registry's back are served
      // as stored, and fsck is what finds them.
      assertEquals((await t.client.get(`/v2/rot/blobs/${d.value}`)).body, flipped(layer));
      const report = await runFsck(t.server.store.state);
      assertEquals(report.problems.map((p) => p.kind), ["blob.corrupt"]);
      return;
    }

    // Checked before the first byte goes out: the client gets an error, never a wrong blob.
    assertError(await t.client.get(`/v2/rot/blobs/${d.value}`), 404, "BLOB_UNKNOWN");
    assert(!await exists(t.driver, d.value), "quarantined");
    assertEquals((await t.client.get(`/v2/rot/blobs/${d.value}`)).status, 404);
    assert(await t.driver.stat(quarantinePath(d)).then(() => true));
  },
);

serverTest("a manifest read from storage with bad bytes is 404 and quarantined", async (t) => {
  const image = await pushLayeredImage(t.client, "mrot", "v1", [randomBytes(1000, 7)], 7);
  const d = parseDigest(image.digest)!;
  await t.driver.put(blobPath(d), flipped(image.manifest));
  await t.server.store.state.cache.clear(); // as after a restart: read from storage
  assertError(await t.client.get(`/v2/mrot/manifests/v1`), 404, "MANIFEST_UNKNOWN");
  assert(!await exists(t.driver, d.value), "quarantined");
  assert(await t.driver.stat(quarantinePath(d)).then(() => true));
});

serverTest("a good blob pulls whole, twice (checked, then from the verified set)", async (t) => {
  const layer = randomBytes(400_000, 5);
  const image = await pushLayeredImage(t.client, "good", "v1", [layer], 5);
  await pullImage(t.client, "good", "v1", image);
  await pullImage(t.client, "good", "v1", image);
  const range = await t.client.get(`/v2/good/blobs/${digest(layer)}`, { range: "bytes=10-19" });
  assertEquals(range.status, 206);
  assertEquals(range.body, layer.slice(10, 20));
});

serverTest("fsck reports dangling tags and links with their keys", async (t) => {
  const image = await pushLayeredImage(t.client, "links", "v1", [randomBytes(1000, 6)], 6);
  const missing = digest(bytes("never pushed"));
  await t.driver.put(tagPath("links", "ghost"), bytes(missing));
  await t.driver.delete(blobPath(parseDigest(digest(image.config))!));
  const report = await runFsck(t.server.store.state);
  const kinds = report.problems.map((p) => `${p.kind} ${p.key}`).sort();
  assertEquals(kinds, [
    `link.dangling repositories/links/_layers/${digest(image.config).replace(":", "/")}`,
    `manifest.blob_missing repositories/links/_manifests/revisions/${
      image.digest.replace(":", "/")
    }`,
    "tag.dangling repositories/links/_manifests/tags/ghost",
  ]);
});

Deno.test("fsck command: exit 1 and each problem's key; --repair quarantines", async () => {
  await using dir = await tempDir("registry-fsck-cli-");
  const layer = randomBytes(2000, 7);
  {
    await using t = await withServer("fs", { dataDir: dir.path });
    await pushLayeredImage(t.client, "cli", "v1", [layer], 7);
  }
  const key = blobPath(parseDigest(digest(layer))!);
  await Deno.writeFile(`${dir.path}/${key}`, flipped(layer));
  const run = async (...args: string[]) => {
    const out = await runMain(["fsck", ...args, "--data-dir", dir.path]);
    return { code: out.code, text: out.stdout };
  };
  const check = await run();
  assertEquals(check.code, 1, check.text);
  assert(check.text.includes(`blob.corrupt ${key}`), check.text);
  const repair = await run("--repair");
  assertEquals(repair.code, 1, repair.text);
  assert(repair.text.includes("repaired: moved to _quarantine/blobs/sha256/"), repair.text);
  assert(!await Deno.stat(`${dir.path}/${key}`).then(() => true, () => false));
});
