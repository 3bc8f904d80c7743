// Several instances on one S3 bucket act as one registry: push on A, pull on B; an upload moved
// between instances; concurrent tag writes from both converge; GC runs while both serve. Each
// case runs twice: instances on their own, and sharing a Redis (cache, locks, pins).

import { createState } from "../../src/store/state.ts";
import { connectCoordination, type RedisSettings } from "../../src/redis/shared.ts";
import { runGc } from "../../src/maintenance/gc.ts";
import { createS3Driver } from "../../src/storage/s3/driver.ts";
import {
  assert,
  assertEquals,
  descriptorOf,
  digest,
  imageManifest,
  jsonBytes,
  OCI_CONFIG,
  OCI_LAYER,
  pushImage,
  randomBytes,
  type RegistryClient,
  S3_IGNORE,
  S3_SETTINGS,
  S3_SKIP_REASON,
  s3Fixture,
  type TestServer,
  withDigest,
  withServer,
} from "../helpers.ts";
import { REDIS_IGNORE, REDIS_SKIP_REASON, startRedis } from "../redis_helpers.ts";

if (S3_IGNORE) console.log(S3_SKIP_REASON);
if (REDIS_IGNORE) console.log(REDIS_SKIP_REASON);

interface Shared {
  prefix: string;
  /** The instances' Redis, in the cases that share one. */
  redis?: RedisSettings;
}

/**
 * Two servers, each with its own driver, registry and upload hashes, on one prefix; locks, pins
 * and caches their own, or shared through one Redis.
 */
function twoInstances(
  title: string,
  fn: (a: TestServer, b: TestServer, shared: Shared) => Promise<void>,
) {
  for (const withRedis of [false, true]) {
    Deno.test({
      name: `s3 instances${withRedis ? " + redis" : ""}: ${title}`,
      ignore: S3_IGNORE || (withRedis && REDIS_IGNORE),
      async fn() {
        await using fixture = s3Fixture();
        await using server = withRedis ? await startRedis() : undefined;
        const redis = server &&
          { url: server.url, lease: 30_000, storage: `s3:${fixture.prefix}` };
        const driver = () => createS3Driver({ ...S3_SETTINGS!, prefix: fixture.prefix });
        await using a = await withServer("s3", { driver: driver(), redis });
        await using b = await withServer("s3", { driver: driver(), redis });
        await fn(a, b, { prefix: fixture.prefix, redis });
      },
    });
  }
}

async function pull(client: RegistryClient, name: string, reference: string) {
  const manifest = await client.get(`/v2/${name}/manifests/${reference}`);
  assertEquals(manifest.status, 200, `manifest ${name}:${reference} (${manifest.text})`);
  const body = manifest.json();
  const blobs = [];
  for (const d of [body.config, ...body.layers]) {
    const blob = await client.get(`/v2/${name}/blobs/${d.digest}`);
    assertEquals(blob.status, 200, `blob ${d.digest}`);
    assertEquals(digest(blob.body), d.digest, "blob bytes match their digest");
    blobs.push(blob.body);
  }
  return { manifest, blobs };
}

twoInstances("a push on A is pullable, listed and tagged on B at once", async (a, b) => {
  const image = await pushImage(a.client, "team/app", "v1", { layerCount: 3, layerSize: 70_000 });
  const { manifest, blobs } = await pull(b.client, "team/app", "v1");
  assertEquals(manifest.body, image.manifest);
  assertEquals(blobs.slice(1), image.layers);
  assertEquals((await b.client.get("/v2/_catalog")).json().repositories, ["team/app"]);
  assertEquals((await b.client.get("/v2/team/app/tags/list")).json().tags, ["v1"]);
  // And back: a tag moved on B is what A serves next.
  const other = await pushImage(b.client, "team/app", "v1", { seed: 9 });
  assertEquals(
    (await a.client.head("/v2/team/app/manifests/v1")).headers.get("docker-content-digest"),
    other.digest,
  );
  // Deleted on A, gone on B.
  assertEquals(
    (await a.client.request("DELETE", `/v2/team/app/manifests/${other.digest}`)).status,
    202,
  );
  assertEquals((await b.client.get("/v2/team/app/manifests/v1")).status, 404);
});

twoInstances("a session started on A, holding nothing yet, is known to B", async (a, b) => {
  const data = randomBytes(200_000, 5);
  const location = new URL(await a.client.startUpload("app"));
  const onB = `${b.url}${location.pathname}${location.search}`;
  assertEquals((await b.client.get(onB)).headers.get("range"), "0-0");
  const put = await b.client.request("PUT", withDigest(onB, digest(data)), { body: data });
  assertEquals(put.status, 201, put.text);
  assertEquals((await a.client.get(`/v2/app/blobs/${digest(data)}`)).body, data);
});

twoInstances("a chunked upload started on A continues and finishes on B", async (a, b) => {
  const data = randomBytes(3 * 1024 * 1024 + 77, 4);
  const cuts = [0, 1_000_000, 2_000_000, 2_500_000, data.length];
  const at = (server: TestServer, location: string) => {
    const url = new URL(location);
    return `${server.url}${url.pathname}${url.search}`;
  };
  let location = await a.client.startUpload("app");
  for (let i = 1; i < cuts.length; i++) {
    const server = i % 2 ? a : b; // A, B, A, B
    const chunk = data.subarray(cuts[i - 1], cuts[i]);
    const res = await server.client.request("PATCH", at(server, location), {
      body: chunk,
      headers: { "content-range": `${cuts[i - 1]}-${cuts[i] - 1}` },
    });
    assertEquals(res.status, 202, `chunk ${i} on ${server === a ? "A" : "B"}: ${res.text}`);
    assertEquals(res.headers.get("range"), `0-${cuts[i] - 1}`);
    location = new URL(res.headers.get("location")!, server.url).toString();
    // The other instance knows the offset from storage, not from the client.
    const other = server === a ? b : a;
    const status = await other.client.get(at(other, location));
    assertEquals([status.status, status.headers.get("range")], [204, `0-${cuts[i] - 1}`]);
  }
  // A forged offset is refused by either instance: the stored size decides.
  const forged = await a.client.request("PATCH", at(a, location), {
    body: new Uint8Array(10),
    headers: { "content-range": `${data.length + 10}-${data.length + 19}` },
  });
  assertEquals(forged.status, 416);
  const put = await a.client.request("PUT", withDigest(at(a, location), digest(data)));
  assertEquals(put.status, 201, put.text);
  const blob = await b.client.get(`/v2/app/blobs/${digest(data)}`);
  assertEquals(blob.body, data);
});

twoInstances(
  "20 concurrent writes of one tag from both instances end as one of them",
  async (a, b) => {
    const config = jsonBytes({ architecture: "amd64", os: "linux" });
    const layer = randomBytes(1000, 3);
    for (const blob of [config, layer]) {
      assertEquals(
        (await a.client.pushBlob("app", blob)).status,
        201,
      );
    }
    const manifests = Array.from({ length: 20 }, (_, i) =>
      jsonBytes({
        ...imageManifest({
          config: descriptorOf(OCI_CONFIG, config),
          layers: [descriptorOf(OCI_LAYER, layer)],
        }),
        annotations: { writer: String(i) },
      }));
    const results = await Promise.all(
      manifests.map((m, i) => (i % 2 ? b : a).client.pushManifest("app", "latest", m)),
    );
    assertEquals(results.map((r) => r.status), results.map(() => 201));
    const fromA = await a.client.get("/v2/app/manifests/latest");
    const fromB = await b.client.get("/v2/app/manifests/latest");
    assertEquals(fromA.status, 200);
    assertEquals(fromB.body, fromA.body, "both instances serve the same tag");
    assert(manifests.some((m) => digest(m) === digest(fromA.body)), "the tag is one of the writes");
    assertEquals((await b.client.get("/v2/app/tags/list")).json().tags, ["latest"]);
  },
);

twoInstances(
  "GC on a third process while A and B serve keeps what is live",
  async (a, b, { prefix, redis }) => {
    // Old state: a tagged image, and a blob no manifest references (junk).
    const kept = await pushImage(a.client, "keep", "v1", { layerCount: 2 });
    const junk = randomBytes(5000, 77);
    assertEquals((await b.client.pushBlob("junk", junk)).status, 201);
    // S3 times have one-second resolution: let everything so far age past the grace.
    await new Promise((resolve) => setTimeout(resolve, 2500));

    const coordination = redis && await connectCoordination(redis);
    const gc = createState({
      driver: createS3Driver({ ...S3_SETTINGS!, prefix }),
      sharedStorage: true,
      coordination,
    });
    const [report, fresh] = await Promise.all([
      runGc(gc, { grace: 2000, untagged: true }),
      // Meanwhile: a new push on B (its layers are young) and pulls from both.
      (async () => {
        const image = await pushImage(b.client, "fresh", "v1", { layerCount: 2, seed: 40 });
        await pull(a.client, "keep", "v1");
        await pull(b.client, "keep", "v1");
        return image;
      })(),
    ]);
    await coordination?.close();
    assert(report.swept.blobs >= 1, `gc swept the junk blob: ${JSON.stringify(report)}`);
    for (const client of [a.client, b.client]) {
      await pull(client, "keep", "v1");
      await pull(client, "fresh", "v1");
      assertEquals((await client.head(`/v2/junk/blobs/${digest(junk)}`)).status, 404);
    }
    assertEquals(digest(kept.manifest), kept.digest);
    assertEquals(digest(fresh.manifest), fresh.digest);
  },
);
