// The write policies over HTTP (src/policy/store.ts): read-only mode on every write route, immutable
// tags, quotas (shared blobs counted once, 16 concurrent pushes against a nearly full quota).

import { parseDigest } from "../../src/grammar.ts";
import { blobPath } from "../../src/storage/paths.ts";
import { listRepository, walkRepositories } from "../../src/store/inventory.ts";
import { ROUTES } from "../../src/routes.ts";
import { readConfigFile } from "../../src/settings/file.ts";
import type { Sections } from "../../src/settings/sections.ts";
import {
  assert,
  assertEquals,
  assertError,
  assertMatch,
  buildImage,
  digest,
  pushBuiltImage,
  pushImage,
  randomBytes,
  serverTest,
  withDigest,
  withServer,
} from "../helpers.ts";

export function sections(text: string): Sections {
  const { settings, problems } = readConfigFile("test.yaml", text);
  assertEquals(problems, []);
  return settings.sections;
}

const SAMPLES: Record<string, string> = {
  name: "team/app",
  digest: `sha256:${"a".repeat(64)}`,
  uuid: "0b0e9e3c-5c4b-4c8e-9d1e-3f2a1b0c9d8e",
  reference: "v1",
};
const path = (pattern: string) =>
  pattern.replace(/:(\w+)(\([^)]*\))?/g, (_, param: string) => SAMPLES[param]);

serverTest("read-only: every write under /v2/ is 405 UNSUPPORTED, reads go on", async (t) => {
  const image = await pushImage(t.client, "team/app", "v1");
  const session = await t.client.startUpload("team/app");
  t.server.policies.replace({ ...t.server.policies.current(), readOnly: true });
  let writes = 0;
  for (const route of ROUTES) {
    const pattern = route.pattern.pathname;
    if (!pattern.startsWith("/v2/")) continue;
    for (const method of ["POST", "PATCH", "PUT", "DELETE"] as const) {
      if (!route.methods[method]) continue;
      writes++;
      // The session started before: a real one, so only read-only mode can refuse it.
      const url = pattern.includes(":uuid") ? withDigest(session, image.digest) : path(pattern);
      const res = await t.client.request(method, url, {
        body: method === "DELETE" ? undefined : "{}",
      });
      assertError(res, 405, "UNSUPPORTED", `${method} ${pattern}`);
      assertMatch(res.json().errors[0].message, /^the registry is read-only/);
    }
  }
  assertEquals(writes, 7, "every write endpoint was tried");
  const pull = await t.client.get(`/v2/team/app/manifests/v1`);
  assertEquals([pull.status, digest(pull.body)], [200, image.digest]);
  assertEquals((await t.client.get(`/v2/team/app/blobs/${digest(image.layers[0])}`)).status, 200);
  assertEquals((await t.client.get("/v2/team/app/tags/list")).json().tags, ["v1"]);
  // Writable again: the same push goes through.
  t.server.policies.replace({ ...t.server.policies.current(), readOnly: false });
  await pushImage(t.client, "team/app", "v2", { seed: 7 });
}, { readOnly: false });

const IMMUTABLE = sections(`
immutable-tags:
  - repositories: "releases/**"
    tags: ["^v\\\\d"]
  - repositories: "scratch/**"
    tags: ^pinned$
    allow-delete: true
`);

serverTest(
  "immutable tags: same digest again is fine; moving is 400 TAG_INVALID; deleting 403",
  async (t) => {
    const v1 = await pushImage(t.client, "releases/app", "v1.0", { seed: 1 });
    await pushImage(t.client, "releases/app", "v1.0", { seed: 1 }); // the same digest: accepted
    const other = buildImage([randomBytes(500, 2)], 2);
    for (const blob of [other.config, ...other.layers]) {
      await t.client.pushBlob(
        "releases/app",
        blob,
      );
    }
    const moved = await t.client.pushManifest("releases/app", "v1.0", other.manifest);
    assertError(moved, 400, "TAG_INVALID");
    assertEquals(
      moved.json().errors[0].message,
      `tag v1.0 already exists in releases/app and is immutable (immutable-tags rule 1): it names ` +
        `${v1.digest} and cannot be overwritten; push under a new tag`,
    );
    assertEquals(
      (await t.client.get("/v2/releases/app/manifests/v1.0")).headers.get("docker-content-digest"),
      v1.digest,
    );
    // Other tags of the repository move freely; the new image can have a new release tag.
    await pushBuiltImage(t.client, "releases/app", "latest", other);
    await pushImage(t.client, "releases/app", "latest", { seed: 3 });
    await pushBuiltImage(t.client, "releases/app", "v1.1", other);

    const deleteTag = await t.client.request("DELETE", "/v2/releases/app/manifests/v1.0");
    assertError(deleteTag, 403, "DENIED");
    assertEquals(
      deleteTag.json().errors[0].message,
      "tag v1.0 of releases/app is immutable (immutable-tags rule 1): it cannot be deleted",
    );
    const byDigest = await t.client.request("DELETE", `/v2/releases/app/manifests/${other.digest}`);
    assertError(byDigest, 403, "DENIED");
    assertMatch(byDigest.json().errors[0].message, /tag v1.1 .* nor the manifest it names$/);
    assertEquals((await t.client.get("/v2/releases/app/tags/list")).json().tags, [
      "latest",
      "v1.0",
      "v1.1",
    ]);

    // A rule that allows deletes: the tag cannot move, but it can go, and then be pushed anew.
    await pushImage(t.client, "scratch/app", "pinned", { seed: 4 });
    assertError(
      await t.client.pushManifest("scratch/app", "pinned", other.manifest),
      400,
      "TAG_INVALID",
    );
    assertEquals(
      (await t.client.request("DELETE", "/v2/scratch/app/manifests/pinned")).status,
      202,
    );
    await pushImage(t.client, "scratch/app", "pinned", { seed: 5 });
  },
  { sections: IMMUTABLE },
);

Deno.test("immutable tags: of two pushes racing to create one tag, exactly one wins", async () => {
  await using t = await withServer("memory", { sections: IMMUTABLE });
  const images = [1, 2, 3, 4, 5, 6].map((seed) => buildImage([randomBytes(300, seed)], seed));
  for (const image of images) {
    for (const blob of [image.config, ...image.layers]) {
      await t.client.pushBlob("releases/app", blob);
    }
  }
  const results = await Promise.all(
    images.map((image) => t.client.pushManifest("releases/app", "v2.0", image.manifest)),
  );
  assertEquals(results.map((r) => r.status).sort(), [201, 400, 400, 400, 400, 400]);
  const winner = images[results.findIndex((r) => r.status === 201)];
  const tagged = await t.client.get("/v2/releases/app/manifests/v2.0");
  assertEquals(tagged.headers.get("docker-content-digest"), winner.digest);
});

/** Bytes a pushed image stores: config, layers and manifest. */
const stored = (image: { config: Uint8Array; layers: Uint8Array[]; manifest: Uint8Array }) =>
  [image.config, ...image.layers, image.manifest].reduce((n, b) => n + b.length, 0);

serverTest(
  "quotas: refused with 403 DENIED naming quota and usage; shared blobs count once",
  async (t) => {
    const quota = await t.client.get("/v2/_quota");
    assertEquals(quota.json(), {
      quotas: [{
        quota: "team-a/**",
        rule: 1,
        maxBytes: 20_000,
        usedBytes: 0,
        reservedBytes: 0,
        digests: 0,
      }],
    });
    const base = randomBytes(8000, 1);
    const first = buildImage([base], 1);
    await pushBuiltImage(t.client, "team-a/one", "v1", first);
    // The same layer in a second repository of the namespace: only its new config and manifest count.
    const second = buildImage([base], 2);
    await pushBuiltImage(t.client, "team-a/two", "v1", second);
    const used = stored(first) + second.config.length + second.manifest.length;
    assertEquals((await t.client.get("/v2/_quota")).json().quotas[0].usedBytes, used);
    // Other repositories are not counted, nor limited.
    await pushImage(t.client, "team-b/app", "v1", { layerSize: 30_000 });

    const big = randomBytes(20_000 - used + 1, 3);
    const refused = await t.client.pushBlob("team-a/one", big);
    assertError(refused, 403, "DENIED");
    assertMatch(
      refused.json().errors[0].message,
      /^quota exceeded for team-a\/\*\*: 8\.\d KiB of 20 KiB used, this push needs \d+(\.\d)? KiB more \(quotas rule 1\)$/,
    );
    assertEquals(refused.json().errors[0].detail.maxBytes, 20_000);
    // Chunked: the PATCH that goes past the quota is refused (the session's bytes count).
    let location = await t.client.startUpload("team-a/one");
    const statuses: number[] = [];
    for (let start = 0; start < big.length; start += 4096) {
      const chunk = big.subarray(start, start + 4096);
      const res = await t.client.request("PATCH", location, {
        body: chunk,
        headers: { "content-range": `${start}-${start + chunk.length - 1}` },
      });
      statuses.push(res.status);
      if (res.status !== 202) {
        assertMatch(res.json().errors[0].message, /KiB of it by pushes in flight\), this push/);
        break;
      }
      location = new URL(res.headers.get("location")!, t.url).toString();
    }
    assertEquals(statuses, [202, 202, 403]);
    // A manifest can still be pushed while it fits; the blob that fits too.
    const fits = await t.client.pushBlob("team-a/one", randomBytes(100, 4));
    assertEquals(fits.status, 201);
    // Deleting frees the space at once: the next push counts again from storage.
    const del = await t.client.request("DELETE", `/v2/team-a/two/blobs/${digest(second.config)}`);
    assertEquals(del.status, 202);
    assertEquals(
      (await t.client.get("/v2/_quota")).json().quotas[0].usedBytes,
      used + 100 - second.config.length,
    );
  },
  { sections: sections("quotas:\n  - repositories: team-a/**\n    max-bytes: 20000\n") },
);

Deno.test("quotas: 16 concurrent pushes against a nearly full quota never take it past its limit", async () => {
  const max = 100_000;
  await using t = await withServer("memory", {
    sections: sections(`quotas:\n  - repositories: ci/**\n    max-bytes: ${max}\n`),
  });
  // Nearly full: 70 KB used, room for about three of the 16 images that follow.
  await pushImage(t.client, "ci/base", "v1", { layerSize: 70_000, layerCount: 1 });
  const images = Array.from(
    { length: 16 },
    (_, i) => buildImage([randomBytes(9_000, 100 + i)], 100 + i),
  );
  const outcomes = await Promise.all(images.map(async (image, i) => {
    const name = `ci/job-${i}`;
    for (const blob of [image.config, ...image.layers]) {
      const res = await t.client.pushBlob(name, blob);
      if (res.status !== 201) return res;
    }
    return await t.client.pushManifest(name, "v1", image.manifest);
  }));
  const ok = outcomes.filter((r) => r.status === 201).length;
  const refused = outcomes.filter((r) => r.status === 403);
  assertEquals(ok + refused.length, 16, outcomes.map((r) => r.status).join(","));
  assert(ok >= 2 && ok <= 3, `${ok} pushes fit`);
  for (const res of refused) {
    assertEquals(res.json().errors[0].code, "DENIED");
    assertMatch(res.json().errors[0].message, /^quota exceeded for ci\/\*\*: .* of 98 KiB used/);
  }
  const usage = (await t.client.get("/v2/_quota")).json().quotas[0];
  assert(usage.usedBytes <= max, `used ${usage.usedBytes} of ${max}`);
  assertEquals(usage.reservedBytes, 0);
  // What the quota counts is what storage holds: each digest linked under ci/**, once.
  const digests = new Set<string>();
  for (const name of await walkRepositories(t.driver)) {
    const listing = await listRepository(t.driver, name);
    for (const d of [...listing.layers, ...listing.revisions]) digests.add(d.value);
  }
  let total = 0;
  for (const value of digests) total += (await t.driver.stat(blobPath(parseDigest(value)!))).size;
  assertEquals(usage.usedBytes, total);
});
