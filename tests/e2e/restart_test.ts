// End-to-end restart (fs): an image pushed before a restart pulls back byte-identical after it,
// and an upload session PATCHed before the restart is PATCHed again and finished after it.

import {
  assert,
  assertEquals,
  assertError,
  digest,
  pushImage,
  randomBytes,
  registryClient,
  tempDir,
  withDigest,
  withServer,
} from "../helpers.ts";

Deno.test("fs: restart keeps images and upload sessions", async () => {
  await using dir = await tempDir("registry-restart-");
  const blob = randomBytes(150_000, 31);
  const streamed = randomBytes(70_000, 32);

  let image;
  let location: string;
  let streamedLocation: string;
  let untouchedLocation: string;
  let oldUrl: string;
  {
    await using first = await withServer("fs", { dataDir: dir.path });
    oldUrl = first.url;
    image = await pushImage(first.client, "library/app", "v1", {
      layerCount: 2,
      layerSize: 40_000,
    });
    const started = await first.client.startUpload("library/app");
    const res = await first.client.request("PATCH", started, {
      body: blob.slice(0, 100_000),
      headers: { "content-range": "0-99999" },
    });
    assertEquals(res.status, 202);
    // From the first bytes on, the plain Location: the session's info on disk vouches for it.
    location = new URL(res.headers.get("location")!, first.url).toString();
    assert(!location.includes("_state"), location);
    streamedLocation = await first.client.startUpload("other");
    await first.client.request("PATCH", streamedLocation, {
      body: ReadableStream.from([streamed.slice(0, 30_000)]),
    });
    // A session that has stored nothing is only its signed Location: the key outlives the process.
    untouchedLocation = await first.client.startUpload("library/app");
  } // shut down here

  await using second = await withServer("fs", { dataDir: dir.path });
  const client = second.client;
  // Sessions are addressed by path; the new server listens on another port.
  const moved = (old: string) => old.replace(oldUrl, second.url);

  const manifest = await client.get("/v2/library/app/manifests/v1");
  assertEquals(manifest.status, 200);
  assertEquals(manifest.body, image.manifest);
  assertEquals(manifest.headers.get("docker-content-digest"), image.digest);
  assertEquals(
    (await client.get(`/v2/library/app/manifests/${image.digest}`)).body,
    image.manifest,
  );
  for (const part of [image.config, ...image.layers]) {
    const res = await client.get(`/v2/library/app/blobs/${digest(part)}`);
    assertEquals(res.body, part);
  }
  assertEquals((await client.get("/v2/library/app/tags/list")).json().tags, ["v1"]);
  assertEquals((await client.get("/v2/_catalog")).json().repositories, ["library/app"]);

  // The ranged upload continues where it stopped.
  const status = await client.get(moved(location));
  assertEquals([status.status, status.headers.get("range")], [204, "0-99999"]);
  const patch = await client.request("PATCH", moved(location), {
    body: blob.slice(100_000),
    headers: { "content-range": `100000-${blob.length - 1}` },
  });
  assertEquals([patch.status, patch.headers.get("range")], [202, `0-${blob.length - 1}`]);
  const put = await client.request("PUT", withDigest(moved(location), digest(blob)));
  assertEquals(put.status, 201, put.text);
  assertEquals((await client.get(`/v2/library/app/blobs/${digest(blob)}`)).body, blob);

  // The streamed upload too, with its last bytes in the PUT (the hash must cover both halves).
  const rest = await client.request("PATCH", moved(streamedLocation), {
    body: ReadableStream.from([streamed.slice(30_000, 50_000)]),
  });
  assertEquals(rest.headers.get("range"), "0-49999");
  const done = await client.request(
    "PUT",
    withDigest(moved(streamedLocation), digest(streamed)),
    {
      body: streamed.slice(50_000),
    },
  );
  assertEquals(done.status, 201, done.text);
  assertEquals(
    (await registryClient(second.url).get(`/v2/other/blobs/${digest(streamed)}`)).body,
    streamed,
  );

  // Finished, the session is unknown: its info is gone, whichever process is asked.
  assertError(await client.get(moved(location)), 404, "BLOB_UPLOAD_UNKNOWN");

  const untouched = await client.get(moved(untouchedLocation));
  assertEquals([untouched.status, untouched.headers.get("range")], [204, "0-0"]);
  const whole = randomBytes(10_000, 33);
  const stored = await client.request("PUT", withDigest(moved(untouchedLocation), digest(whole)), {
    body: whole,
  });
  assertEquals(stored.status, 201, stored.text);
});
