// End-to-end tests of the web UI's data endpoints (/ui/api/) against a real server filled over its
// API: listings, a manifest's page, layer files (gzip, zstd), diffs, storage, deletes, headers.

import { startServer } from "../../src/server.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { assert, assertEquals, assertMatch, bytes, readResponse, withServer } from "../helpers.ts";
import { COSIGN_SIGNATURE, pushSampleImage, pushSamples, SPDX_SBOM } from "./fixtures.ts";

async function getJson(url: string, path: string) {
  const res = await readResponse(await fetch(url + path));
  assertEquals(res.status, 200, `${path}: ${res.text}`);
  return res.json();
}

Deno.test("ui api: repositories with figures, filtered, by namespace, paged", async () => {
  await using s = await withServer("memory");
  await pushSamples(s.client);
  const all = await getJson(s.url, "/ui/api/repositories");
  assertEquals(all.items.map((r: { name: string }) => r.name), [
    "team/app",
    "team/multi",
    "tools/zstd",
  ]);
  assertEquals(all.total, 3);
  assertEquals(all.namespaces, [{ name: "team", count: 2 }, { name: "tools", count: 1 }]);
  const app = all.items[0];
  assertEquals(app.tags, 3);
  assert(app.size > 0 && typeof app.pushed === "string", JSON.stringify(app));
  assertEquals((await getJson(s.url, "/ui/api/repositories?q=zst")).total, 1);
  assertEquals((await getJson(s.url, "/ui/api/repositories?q=team%20mul")).items.length, 1);
  assertEquals((await getJson(s.url, "/ui/api/repositories?ns=team")).total, 2);
  const first = await getJson(s.url, "/ui/api/repositories?n=2");
  assertEquals(first.items.length, 2);
  assertEquals(first.next, "team/multi");
  const second = await getJson(s.url, `/ui/api/repositories?n=2&last=${first.next}`);
  assertEquals(second.items.map((r: { name: string }) => r.name), ["tools/zstd"]);
  assertEquals(second.next, undefined);
});

Deno.test("ui api: tags with digest, kind, platforms, size, created; sorted and paged", async () => {
  await using s = await withServer("memory");
  const samples = await pushSamples(s.client);
  const tags = await getJson(s.url, "/ui/api/r/team/app/tags");
  assertEquals(tags.items.map((t: { tag: string }) => t.tag), ["1.0", "1.1", "latest"]);
  const v11 = tags.items[1];
  assertEquals(v11.digest, samples.app11.digest);
  assertEquals(v11.kind, "image");
  assertEquals(v11.platforms, [{ os: "linux", architecture: "amd64" }]);
  assertEquals(v11.created, "2026-11-15T10:00:00Z");
  assert(v11.size > 0);
  assertEquals(tags.canDelete, true);
  const byPush = await getJson(s.url, "/ui/api/r/team/app/tags?sort=pushed");
  assertEquals(byPush.items[0].tag, "latest", "newest push first");
  const paged = await getJson(s.url, "/ui/api/r/team/app/tags?n=2");
  assertEquals([paged.items.length, paged.next, paged.total], [2, "2", 3]);
  const rest = await getJson(s.url, "/ui/api/r/team/app/tags?n=2&cursor=2");
  assertEquals(rest.items.map((t: { tag: string }) => t.tag), ["latest"]);
  const multi = await getJson(s.url, "/ui/api/r/team/multi/tags");
  assertEquals(multi.items[0].kind, "index");
  assertEquals(multi.items[0].platforms, [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ]);
  const unknown = await readResponse(await fetch(`${s.url}/ui/api/r/no/such/tags`));
  assertEquals(unknown.status, 404);
  assertEquals(unknown.json().errors[0].code, "NAME_UNKNOWN");
});

Deno.test("ui api: a manifest's page: config, layers with history, referrers, raw JSON", async () => {
  await using s = await withServer("memory");
  const samples = await pushSamples(s.client);
  const view = await getJson(s.url, "/ui/api/r/team/app/manifests/1.1");
  assertEquals(view.digest, samples.app11.digest);
  assertEquals(view.tags, ["1.1", "latest"]);
  assertEquals(view.config.summary.entrypoint, ["/bin/app"]);
  assertEquals(view.config.summary.user, "1000:1000");
  assert(view.config.summary.env.includes("LOG_LEVEL=debug"));
  assertEquals(view.layers.map((l: { createdBy: string }) => l.createdBy), [
    "ADD rootfs.tar /",
    "COPY app /bin/app",
    "RUN install-plugin metrics",
  ]);
  assertEquals(view.history.length, 4, "the empty-layer ENV line is kept in the history");
  const types = view.referrers.map((r: { artifactType: string }) => r.artifactType).sort();
  assertEquals(types, [COSIGN_SIGNATURE, SPDX_SBOM].sort());
  assertEquals(JSON.parse(view.raw).layers.length, 3);
  const signature = await getJson(s.url, `/ui/api/r/team/app/manifests/${samples.signature}`);
  assertEquals(signature.kind, "artifact");
  assertEquals(signature.subject.digest, samples.app11.digest);
  const index = await getJson(s.url, "/ui/api/r/team/multi/manifests/latest");
  assertEquals(
    index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture),
    ["amd64", "arm64"],
  );
  const missing = await readResponse(await fetch(`${s.url}/ui/api/r/team/app/manifests/9.9`));
  assertEquals(missing.status, 404);
  assertEquals(missing.json().errors[0].code, "MANIFEST_UNKNOWN");
});

Deno.test("ui api: layer files from gzip and zstd layers; other blobs refused", async () => {
  await using s = await withServer("memory");
  const samples = await pushSamples(s.client);
  const gz = await getJson(
    s.url,
    `/ui/api/r/team/app/blobs/${samples.app10.layers[0].digest}/files`,
  );
  assertEquals(gz.compression, "gzip");
  assertEquals(gz.entries.map((e: { path: string }) => e.path), [
    "bin",
    "bin/sh",
    "etc",
    "etc/os-release",
    "etc/hostname",
    "lib",
  ]);
  assertEquals(gz.entries[5].link, "usr/lib");
  assertEquals(gz.entries[1].mode, 0o755);
  const zst = await getJson(
    s.url,
    `/ui/api/r/tools/zstd/blobs/${samples.zstdImage.layers[1].digest}/files`,
  );
  assertEquals(zst.compression, "zstd");
  const long = zst.entries.find((e: { path: string }) => e.path.endsWith("asset-zstd.txt"));
  assert(long && long.path.length > 100, "a pax long name is read whole");
  assertEquals(zst.truncated, undefined);
  // A blob of another repository is not served here, even when it is stored.
  const elsewhere = await readResponse(
    await fetch(`${s.url}/ui/api/r/team/multi/blobs/${samples.zstdImage.layers[1].digest}/files`),
  );
  assertEquals(elsewhere.status, 404);
  // A blob that is not tar: 415, not a 500.
  const text = bytes("just some text, not an archive at all\n".repeat(20));
  assertEquals((await s.client.pushBlob("team/app", text)).status, 201);
  const { digest } = await import("../helpers.ts");
  const notTar = await readResponse(
    await fetch(`${s.url}/ui/api/r/team/app/blobs/${digest(text)}/files`),
  );
  assertEquals(notTar.status, 415, notTar.text);
});

Deno.test("ui api: a listing stops at its entry limit and says so", async () => {
  const { listLayer } = await import("../../src/ui/files.ts");
  await using s = await withServer("memory");
  const image = await pushSampleImage(s.client, "big/layer", "1", {
    layers: [{
      files: Array.from({ length: 300 }, (_, i) => ({ path: `f/${i}.txt`, content: `${i}` })),
    }],
  });
  const ctx = { store: s.server.store } as Parameters<typeof listLayer>[0];
  const limited = await listLayer(ctx, "big/layer", image.layers[0].digest, {
    entries: 100,
    bytes: 1 << 30,
  });
  assertEquals([limited.entries.length, limited.truncated], [100, "entries"]);
  const byBytes = await listLayer(ctx, "big/layer", image.layers[0].digest, {
    entries: 10_000,
    bytes: 20 * 1024,
  });
  assertEquals(byBytes.truncated, "bytes");
  assert(byBytes.entries.length > 10 && byBytes.entries.length < 300, `${byBytes.entries.length}`);
});

Deno.test("ui api: the difference of two tags, and of an index's platforms", async () => {
  await using s = await withServer("memory");
  await pushSamples(s.client);
  const diff = await getJson(s.url, "/ui/api/r/team/app/diff?from=1.0&to=1.1");
  assertEquals(diff.totals.added.count, 2);
  assertEquals(diff.totals.removed.count, 1);
  assertEquals(diff.totals.shared.count, 1);
  const fields = diff.changes.map((c: { field: string }) => c.field);
  assertEquals(fields, ["created", "env LOG_LEVEL", "label org.opencontainers.image.version"]);
  const env = diff.changes[1];
  assertEquals([env.before, env.after], ["info", "debug"]);
  const arm = await getJson(
    s.url,
    "/ui/api/r/team/multi/diff?from=latest&to=latest&platform=linux/arm64/v8",
  );
  assertEquals(arm.to.platform, "linux/arm64/v8");
  assertEquals(arm.totals.added.count + arm.totals.removed.count, 0);
  assertEquals(arm.platforms, ["linux/amd64", "linux/arm64/v8"]);
});

Deno.test("ui api: storage: shared blobs, what sharing saves, largest, GC dry run", async () => {
  await using s = await withServer("memory");
  await pushSamples(s.client);
  // An unreferenced blob: the dry run counts it once the grace is over (grace 0 below).
  const stray = bytes("stray blob nobody references");
  await s.client.pushBlob("team/app", stray);
  const report = await getJson(s.url, "/ui/api/storage");
  assertEquals(report.repositories, 3);
  assert(report.sharedBlobs >= 1, "the base layer is shared by three repositories");
  const base = report.mostShared[0];
  assertEquals(base.repositories, 3);
  assertEquals(report.savedBytes, report.linkedBytes - report.uniqueBytes);
  assert(report.savedBytes >= base.size * 2);
  assertEquals(report.largest[0].name, "team/app");
  assert(report.registry.stored.blobs > 0);
  assertEquals(report.registry.gc.blobs, 0, "young blobs are spared by the default grace");
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver: createMemoryDriver(),
    gcGrace: 0,
  });
  try {
    const client = (await import("../helpers.ts")).registryClient(server.url);
    await client.pushBlob("solo/repo", stray);
    // A grace of 0 still spares what was written in the pass's own millisecond.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const dry = await getJson(server.url, "/ui/api/storage");
    assertEquals([dry.registry.gc.blobs, dry.registry.gc.bytes], [1, stray.length]);
    assertEquals(
      (await client.head(`/v2/solo/repo/blobs/${(await import("../helpers.ts")).digest(stray)}`))
        .status,
      200,
      "a dry run deletes nothing",
    );
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("ui api: deletes go through the store, need the CSRF token and this origin", async () => {
  await using s = await withServer("memory");
  await pushSamples(s.client);
  const session = await getJson(s.url, "/ui/api/session");
  const del = (path: string, headers: HeadersInit) =>
    fetch(s.url + path, { method: "DELETE", headers }).then(readResponse);
  assertEquals((await del("/ui/api/r/team/app/manifests/1.0", {})).status, 403, "no token");
  assertEquals(
    (await del("/ui/api/r/team/app/manifests/1.0", {
      "x-csrf-token": session.csrf,
      "sec-fetch-site": "cross-site",
    })).status,
    403,
    "a cross-site request",
  );
  assertEquals(
    (await del("/ui/api/r/team/app/manifests/1.0", {
      "x-csrf-token": session.csrf,
      origin: "http://evil.example",
    })).status,
    403,
    "a foreign Origin",
  );
  const ok = await del("/ui/api/r/team/app/manifests/1.0", {
    "x-csrf-token": session.csrf,
    origin: s.url,
    "sec-fetch-site": "same-origin",
  });
  assertEquals(ok.status, 202, ok.text);
  assertEquals((await s.client.get("/v2/team/app/manifests/1.0")).status, 404);
  assertEquals((await s.client.get("/v2/team/app/manifests/1.1")).status, 200);
  const tags = await getJson(s.url, "/ui/api/r/team/app/tags");
  assertEquals(tags.items.map((t: { tag: string }) => t.tag), ["1.1", "latest"]);
});

Deno.test("ui api: --no-delete hides the button and refuses the delete", async () => {
  await using s = await withServer("memory", { deleteEnabled: false });
  await pushSamples(s.client);
  const session = await getJson(s.url, "/ui/api/session");
  assertEquals(session.deletes, false);
  assertEquals((await getJson(s.url, "/ui/api/r/team/app/tags")).canDelete, false);
  const res = await readResponse(
    await fetch(`${s.url}/ui/api/r/team/app/manifests/1.0`, {
      method: "DELETE",
      headers: { "x-csrf-token": session.csrf },
    }),
  );
  assertEquals(res.status, 405);
});

Deno.test("ui: the page and its files, with CSP, nosniff and no framing; --no-ui turns it off", async () => {
  await using s = await withServer("memory");
  for (const path of ["/", "/ui/r/team/app:1.0", "/ui/storage", "/ui/login"]) {
    const res = await readResponse(await fetch(s.url + path));
    assertEquals(res.status, 200, path);
    assertMatch(res.headers.get("content-type"), /^text\/html/);
    assertMatch(res.headers.get("content-security-policy"), /script-src 'self'/);
    assertMatch(res.headers.get("content-security-policy"), /frame-ancestors 'none'/);
    assertEquals(res.headers.get("x-content-type-options"), "nosniff");
    assert(!/<script(?![^>]*\bsrc=)/.test(res.text), "no inline script");
    assert(!/\sstyle=|<style/.test(res.text), "no inline style");
  }
  const js = await fetch(`${s.url}/ui/static/app.js`);
  await js.body?.cancel();
  assertMatch(js.headers.get("content-type"), /^text\/javascript/);
  const etag = js.headers.get("etag")!;
  const again = await fetch(`${s.url}/ui/static/app.js`, { headers: { "if-none-match": etag } });
  assertEquals(again.status, 304);
  await again.body?.cancel();
  assertEquals((await readResponse(await fetch(`${s.url}/ui/static/nope.js`))).status, 404);
  const errors = await fetch(`${s.url}/ui/api/r/no/such/tags`);
  await errors.body?.cancel();
  assertEquals(errors.headers.get("x-content-type-options"), "nosniff", "errors too");

  const plain = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver: createMemoryDriver(),
    ui: false,
  });
  try {
    for (const path of ["/", "/ui/static/app.js", "/ui/api/repositories"]) {
      const res = await readResponse(await fetch(plain.url + path));
      assertEquals(res.status, 404, `--no-ui ${path}`);
    }
    assertEquals((await readResponse(await fetch(`${plain.url}/v2/`))).status, 200);
  } finally {
    await plain.shutdown(1000);
  }
});
