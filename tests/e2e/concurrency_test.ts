// End-to-end: 20 parallel pushes of one blob (monolithic and chunked) and 20 parallel PUTs of one
// tag with different manifests; the end state must be valid and whole.

import {
  assert,
  assertEquals,
  digest,
  jsonBytes,
  OCI_MANIFEST,
  pushImage,
  randomBytes,
  serverTest,
  snapshot,
} from "../helpers.ts";

const N = 20;

serverTest("20 parallel monolithic pushes of the same blob", async ({ client, driver }) => {
  const data = randomBytes(200_000, 20);
  const results = await Promise.all(Array.from({ length: N }, () => client.pushBlob("app", data)));
  for (const res of results) assertEquals(res.status, 201, res.text);
  const get = await client.get(`/v2/app/blobs/${digest(data)}`);
  assertEquals(digest(get.body), digest(data));
  assertEquals(get.body.length, data.length);
  assertEquals(await driver.list("_uploads"), [], "no session left behind");
  const blobs = Object.keys(await snapshot(driver, ["blobs"]));
  assertEquals(blobs.length, 1, "stored once");
});

serverTest(
  "20 parallel chunked pushes of the same blob, into different repositories",
  async (s) => {
    const { client, driver } = s;
    const data = randomBytes(64_000, 21);
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => client.pushBlobChunked(`repo${i % 4}`, data, 10_000)),
    );
    for (const res of results) assertEquals(res.status, 201, res.text);
    for (let i = 0; i < 4; i++) {
      const get = await client.get(`/v2/repo${i}/blobs/${digest(data)}`);
      assertEquals(digest(get.body), digest(data), `repo${i}`);
    }
    assertEquals(await driver.list("_uploads"), []);
    const stored = await snapshot(driver, ["blobs"]);
    assertEquals(Object.values(stored), [digest(data)], "one blob whose bytes verify");
  },
);

serverTest("20 parallel PUTs of the same tag with different manifests", async ({ client }) => {
  const base = await pushImage(client, "app", undefined);
  const parsed = JSON.parse(new TextDecoder().decode(base.manifest));
  const manifests = Array.from(
    { length: N },
    (_, i) => jsonBytes({ ...parsed, annotations: { n: String(i) } }),
  );
  const results = await Promise.all(
    manifests.map((m) => client.pushManifest("app", "latest", m, OCI_MANIFEST)),
  );
  for (const res of results) assertEquals(res.status, 201, res.text);
  const get = await client.get("/v2/app/manifests/latest");
  assertEquals(get.status, 200);
  const winner = manifests.findIndex((m) => digest(m) === digest(get.body));
  assert(winner >= 0, "the tag points to one of the 20 manifests");
  assertEquals(get.headers.get("docker-content-digest"), digest(manifests[winner]));
  assertEquals(get.body, manifests[winner], "intact");
  // Every revision is stored, and each GETs intact by digest.
  for (const m of manifests) {
    assertEquals((await client.get(`/v2/app/manifests/${digest(m)}`)).body, m);
  }
  assertEquals((await client.get("/v2/app/tags/list")).json().tags, ["latest"]);
});

serverTest("a tag PUT racing its DELETE ends in a consistent state", async ({ client }) => {
  const image = await pushImage(client, "app", "v1");
  const ops = Array.from(
    { length: N },
    (_, i) =>
      i % 2
        ? client.request("DELETE", "/v2/app/manifests/v1")
        : client.pushManifest("app", "v1", image.manifest, OCI_MANIFEST),
  );
  for (const res of await Promise.all(ops)) assert([201, 202, 404].includes(res.status), res.text);
  const tags = (await client.get("/v2/app/tags/list")).json().tags;
  const get = await client.get("/v2/app/manifests/v1");
  if (tags.includes("v1")) assertEquals(get.body, image.manifest);
  else assertEquals(get.status, 404);
});
