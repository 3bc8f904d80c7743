// Crash safety: the registry runs as a subprocess on one data dir, is SIGKILLed at seeded random
// moments during concurrent pushes (blobs, chunked and streamed uploads, manifests, tag moves)
// and restarted; whatever got a 2xx is still served byte-identical, interrupted uploads continue
// or are 404, nothing is served with a wrong digest, and fsck is clean at the end.
// CRASH_KILLS (default 20) and CRASH_SEED (default 1): `deno task test:crash`.

import { runFsck } from "../../src/maintenance/fsck.ts";
import { runGc } from "../../src/maintenance/gc.ts";
import { listBlobs } from "../../src/store/inventory.ts";
import { createState } from "../../src/store/state.ts";
import { createFsDriver } from "../../src/storage/fs.ts";
import {
  assert,
  assertEquals,
  type Bytes,
  digest,
  MAIN_PATH,
  OCI_MANIFEST,
  randomBytes,
  type RegistryClient,
  registryClient,
  type RegistryProcess,
  sendSignal,
  spawnRegistry,
  tempDir,
  withDigest,
  withServer,
} from "../helpers.ts";
import { buildImage, prng, pullImage, pushLayeredImage } from "../maintenance/gc_helpers.ts";

const KILLS = Number(Deno.env.get("CRASH_KILLS") ?? "20");
const SEED = Number(Deno.env.get("CRASH_SEED") ?? "1");
const WORKERS = 4;

/** Everything the registry acknowledged with a 2xx, and what was in flight when it died. */
interface Acked {
  blobs: Map<string, { repository: string; data: Bytes }>;
  manifests: Map<string, { repository: string; data: Bytes }>;
  /** `repository:tag` → the digest last acknowledged, and those whose PUT never answered. */
  tags: Map<string, { acked?: string; inflight: Set<string> }>;
  /** Upload sessions left mid-way: their URL, all their bytes, and how far a 202 confirmed. */
  sessions: { location: string; repository: string; data: Bytes; confirmed: number }[];
}

Deno.test(`fs: ${KILLS} SIGKILLs during pushes lose nothing acknowledged (seed ${SEED})`, async () => {
  await using dir = await tempDir("registry-crash-");
  const random = prng(SEED);
  const acked: Acked = { blobs: new Map(), manifests: new Map(), tags: new Map(), sessions: [] };
  let counter = 0;
  let served = 0;

  for (let round = 0; round < KILLS; round++) {
    const server = await spawnRegistry(["--data-dir", dir.path]);
    const client = registryClient(server.url);
    // What the previous incarnation acknowledged is all still there.
    served += await verify(client, acked, random);
    let alive = true;
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      while (alive) {
        const n = ++counter;
        try {
          await step(client, acked, random, w, n);
        } catch (error) {
          if (alive) throw error; // only the kill may break a request
        }
      }
    });
    await new Promise((r) => setTimeout(r, 150 + random() * 900));
    alive = false;
    await server.stop("SIGKILL");
    await Promise.all(workers);
  }

  const server = await spawnRegistry(["--data-dir", dir.path]);
  try {
    const client = registryClient(server.url);
    served += await verify(client, acked, random, true);
    console.log(
      `${KILLS} kills: ${acked.blobs.size} blobs, ${acked.manifests.size} manifests, ` +
        `${acked.tags.size} tags acknowledged; ${served} objects re-read and checked`,
    );
    assert(acked.blobs.size > KILLS && acked.manifests.size > KILLS / 2, "enough work was done");
  } finally {
    await stopGracefully(server);
  }
  const registry = createState({ driver: createFsDriver(dir.path) });
  assertEquals((await runFsck(registry)).problems, [], "fsck after the crashes");
  // GC after the crashes keeps every tagged image whole too.
  await runGc(registry, { grace: 0, untagged: false, uploadTtl: 0 });
  assertEquals((await runFsck(registry)).problems, [], "fsck after gc");
});

/** One unit of work, chosen by the seeded PRNG. */
async function step(
  client: RegistryClient,
  acked: Acked,
  random: () => number,
  worker: number,
  n: number,
): Promise<void> {
  const repository = `crash/r${worker % 2}`;
  const roll = random();
  if (roll < 0.3) {
    // A monolithic blob.
    const data = randomBytes(1000 + Math.floor(random() * 200_000), n);
    const res = await client.pushBlob(repository, data);
    assertEquals(res.status, 201, res.text);
    acked.blobs.set(digest(data), { repository, data });
  } else if (roll < 0.55) {
    // A chunked upload, sometimes left unfinished for the next incarnation to continue.
    const data = randomBytes(20_000 + Math.floor(random() * 150_000), n);
    const location = await client.startUpload(repository);
    const session = { location: pathOf(location), repository, data, confirmed: 0 };
    acked.sessions.push(session);
    const chunk = 16_384;
    const stopAt = random() < 0.4 ? Math.floor(random() * data.length) : data.length;
    let url = location;
    while (session.confirmed < stopAt) {
      const end = Math.min(data.length, session.confirmed + chunk);
      const res = await client.request("PATCH", url, {
        body: data.slice(session.confirmed, end),
        headers: { "content-range": `${session.confirmed}-${end - 1}` },
      });
      assertEquals(res.status, 202, res.text);
      url = new URL(res.headers.get("location")!, client.url).toString();
      session.location = pathOf(url);
      session.confirmed = end;
    }
    if (stopAt < data.length) return; // left for after the crash
    const res = await client.request("PUT", withDigest(url, digest(data)));
    assertEquals(res.status, 201, res.text);
    acked.sessions.splice(acked.sessions.indexOf(session), 1);
    acked.blobs.set(digest(data), { repository, data });
  } else if (roll < 0.65) {
    // A docker-style streamed PATCH (no Content-Range), then PUT.
    const data = randomBytes(5000 + Math.floor(random() * 300_000), n);
    const location = await client.startUpload(repository);
    const res = await client.request("PATCH", location, {
      body: ReadableStream.from(chunks(data, 32_768)),
    });
    assertEquals(res.status, 202, res.text);
    const put = await client.request(
      "PUT",
      withDigest(new URL(res.headers.get("location")!, client.url).toString(), digest(data)),
    );
    assertEquals(put.status, 201, put.text);
    acked.blobs.set(digest(data), { repository, data });
  } else {
    // An image: blobs, the manifest by digest, then the worker's tag moves to it.
    const image = buildImage([randomBytes(2000 + Math.floor(random() * 50_000), n)], n);
    for (const data of [image.config, ...image.layers]) {
      const res = await client.pushBlob(repository, data);
      assertEquals(res.status, 201, res.text);
      acked.blobs.set(digest(data), { repository, data });
    }
    const byDigest = await client.pushManifest(repository, image.digest, image.manifest);
    assertEquals(byDigest.status, 201, byDigest.text);
    acked.manifests.set(`${repository}@${image.digest}`, { repository, data: image.manifest });
    const key = `${repository}:w${worker}`;
    const tag = acked.tags.get(key) ?? { inflight: new Set<string>() };
    acked.tags.set(key, tag);
    tag.inflight.add(image.digest);
    const res = await client.pushManifest(repository, `w${worker}`, image.manifest, OCI_MANIFEST);
    assertEquals(res.status, 201, res.text);
    tag.acked = image.digest;
    tag.inflight.clear();
  }
}

/**
 * Re-reads what was acknowledged (everything when `all`, else a sample plus every session),
 * hashing every byte served; continues interrupted uploads. Resolves to the objects checked.
 */
async function verify(
  client: RegistryClient,
  acked: Acked,
  random: () => number,
  all = false,
): Promise<number> {
  let checked = 0;
  const sample = <T>(items: T[]) => all ? items : items.filter(() => random() < 0.2);
  for (const [value, { repository, data }] of sample([...acked.blobs])) {
    const res = await client.get(`/v2/${repository}/blobs/${value}`);
    assertEquals(res.status, 200, `blob ${value} acknowledged, then lost: ${res.text}`);
    assertEquals(digest(res.body), value, `blob ${value} served with other bytes`);
    assertEquals(res.body.length, data.length);
    checked++;
  }
  for (const [key, { repository, data }] of sample([...acked.manifests])) {
    const res = await client.get(`/v2/${repository}/manifests/${key.split("@")[1]}`, {
      accept: OCI_MANIFEST,
    });
    assertEquals(res.status, 200, `manifest ${key} acknowledged, then lost: ${res.text}`);
    assertEquals(digest(res.body), digest(data), `manifest ${key} served with other bytes`);
    checked++;
  }
  for (const [key, tag] of acked.tags) {
    const [repository, name] = key.split(":");
    const res = await client.get(`/v2/${repository}/manifests/${name}`, { accept: OCI_MANIFEST });
    const allowed = new Set([...tag.inflight, ...tag.acked ? [tag.acked] : []]);
    if (!tag.acked && res.status === 404) continue; // never acknowledged, never landed
    assertEquals(res.status, 200, `tag ${key} lost: ${res.text}`);
    const got = digest(res.body);
    assert(allowed.has(got), `tag ${key} points to ${got}, not one of ${[...allowed]}`);
    tag.acked = got; // whichever landed is now the state
    tag.inflight.clear();
    checked++;
  }
  // Interrupted uploads: each continues from where the registry says it stands, or is gone.
  for (const session of acked.sessions.splice(0)) {
    const status = await client.get(session.location);
    if (status.status === 404) continue;
    assertEquals(status.status, 204, `upload status: ${status.text}`);
    const range = /^0-(\d+)$/.exec(status.headers.get("range") ?? "");
    assert(range, `upload range: ${status.headers.get("range")}`);
    let offset = Number(range[1]) + 1;
    if (offset === 1) offset = 0; // `0-0` is also what an empty session says
    assert(offset >= session.confirmed || session.confirmed === 1, "confirmed bytes lost");
    assert(offset <= session.data.length, `upload holds ${offset} of ${session.data.length} bytes`);
    let url = new URL(session.location, client.url).toString();
    if (offset < session.data.length) {
      const res = await client.request("PATCH", url, {
        body: session.data.slice(offset),
        headers: { "content-range": `${offset}-${session.data.length - 1}` },
      });
      assertEquals(res.status, 202, `continue upload: ${res.text}`);
      url = new URL(res.headers.get("location")!, client.url).toString();
    }
    const res = await client.request("PUT", withDigest(url, digest(session.data)));
    assertEquals(res.status, 201, `finish continued upload: ${res.text}`);
    acked.blobs.set(digest(session.data), { repository: session.repository, data: session.data });
    checked++;
  }
  return checked;
}

/** A Location without its origin: the next incarnation listens on another port. */
function pathOf(location: string): string {
  const url = new URL(location);
  return url.pathname + url.search;
}

function* chunks(data: Bytes, size: number): Generator<Bytes> {
  for (let i = 0; i < data.length; i += size) yield data.slice(i, i + size);
}

async function stopGracefully(server: RegistryProcess): Promise<void> {
  const status = await server.stop("SIGTERM");
  assertEquals(status.code, 0, "graceful exit");
}

Deno.test(`fs: gc killed mid-sweep leaves a consistent store (seed ${SEED})`, async () => {
  await using dir = await tempDir("registry-gc-crash-");
  const random = prng(SEED + 1000);
  const kept: { repository: string; tag: string; image: ReturnType<typeof buildImage> }[] = [];
  {
    await using t = await withServer("fs", { dataDir: dir.path });
    const shared = randomBytes(30_000, 7);
    for (let i = 0; i < 40; i++) {
      const repository = `gc/r${i % 3}`;
      const tag = `v${i}`;
      const layers = [shared, randomBytes(1000 + i * 10, 100 + i)];
      const image = await pushLayeredImage(t.client, repository, tag, layers, 100 + i);
      // Two thirds become garbage: deleted by digest, or untagged.
      if (i % 3 === 0) kept.push({ repository, tag, image });
      else if (i % 3 === 1) await t.client.request("DELETE", `/v2/${repository}/manifests/${tag}`);
      else await t.client.request("DELETE", `/v2/${repository}/manifests/${image.digest}`);
    }
    for (let i = 0; i < 150; i++) await t.client.pushBlob("gc/orphans", randomBytes(500, 1000 + i));
  }
  const gcCommand = (...extra: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN_PATH, "gc", "--gc-grace", "0s", "--gc-untagged", ...extra],
      stdout: "null",
      stderr: "null",
    });
  // A dry run does all the reading a real one does: its time spans the kill moments.
  const started = performance.now();
  await gcCommand("--dry-run", "--data-dir", dir.path).output();
  const span = performance.now() - started;
  const registry = createState({ driver: createFsDriver(dir.path) });
  const blobCount = async () => (await listBlobs(registry.driver)).digests.length;
  let killed = 0;
  let midSweep = 0;
  for (let round = 0; round < 8; round++) {
    const before = await blobCount();
    const gc = gcCommand("--data-dir", dir.path).spawn();
    let kill = false;
    const timer = setTimeout(() => {
      kill = sendSignal(gc, "SIGKILL");
    }, span * (0.5 + random() * 0.7));
    await gc.status;
    clearTimeout(timer);
    const after = await blobCount();
    if (kill) killed++;
    if (kill && after < before && after > kept.length * 3 + 1) midSweep++;
    assertEquals((await runFsck(registry)).problems, [], `fsck after gc round ${round}`);
    if (!kill) break; // it finished: nothing left to interrupt
  }
  const last = await runGc(registry, { grace: 0, untagged: true });
  assertEquals((await runFsck(registry)).problems, []);
  console.log(
    `gc killed ${killed} times (${midSweep} mid-sweep); the last pass swept ${last.swept.blobs}`,
  );
  await using t = await withServer("fs", { dataDir: dir.path });
  for (const { repository, tag, image } of kept) {
    await pullImage(t.client, repository, tag, image);
  }
});
