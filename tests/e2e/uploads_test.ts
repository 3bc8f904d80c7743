// End-to-end: upload sessions — POST, monolithic POST, mounts, PATCH (ranged and streamed),
// status, PUT with and without a last chunk, wrong digests, cancel.

import {
  assert,
  assertEquals,
  assertError,
  assertMatch,
  concat,
  digest,
  randomBytes,
  type RegistryClient,
  serverTest,
  streamOf,
  withDigest,
  withServer,
} from "../helpers.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";

const DATA = randomBytes(30_000, 5);
const D = digest(DATA);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function patch(
  client: RegistryClient,
  location: string,
  chunk: Uint8Array<ArrayBuffer>,
  start: number,
) {
  return await client.request("PATCH", location, {
    body: chunk,
    headers: {
      "content-type": "application/octet-stream",
      "content-range": `${start}-${start + chunk.length - 1}`,
    },
  });
}

serverTest("POST starts a session: 202, Location, Docker-Upload-UUID, Range 0-0", async (s) => {
  const res = await s.client.request("POST", "/v2/app/blobs/uploads/");
  assertEquals(res.status, 202);
  const uuid = res.headers.get("docker-upload-uuid");
  assertMatch(uuid, UUID_RE);
  const location = res.headers.get("location")!;
  assertMatch(location, new RegExp(`^${s.url}/v2/app/blobs/uploads/${uuid}\\?_state=[\\w.-]+$`));
  assertEquals(res.headers.get("range"), "0-0");
  assertEquals(res.headers.get("content-length"), "0");
  // Two sessions are distinct.
  const again = await s.client.request("POST", "/v2/app/blobs/uploads/");
  assert(again.headers.get("docker-upload-uuid") !== uuid);
  // The blob is not there yet.
  assertEquals((await s.client.head(`/v2/app/blobs/${D}`)).status, 404);
});

serverTest("POST ?digest= with the body is a monolithic push: 201", async (s) => {
  const res = await s.client.pushBlob("app/nested", DATA);
  assertEquals(res.status, 201);
  assertEquals(res.headers.get("location"), `${s.url}/v2/app/nested/blobs/${D}`);
  assertEquals(res.headers.get("docker-content-digest"), D);
  assertEquals((await s.client.get(`/v2/app/nested/blobs/${D}`)).body, DATA);
  // Pushing an existing blob again is fine.
  assertEquals((await s.client.pushBlob("app/nested", DATA)).status, 201);
});

serverTest("a whole body with its digest: stored once, verified even when known", async (s) => {
  const { client } = s;
  // PUT with the whole body on an empty session, then the same digest over other bytes.
  const location = await client.startUpload("app");
  assertEquals((await client.request("PUT", withDigest(location, D), { body: DATA })).status, 201);
  assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);
  assertEquals(await s.driver.list("_uploads"), [], "the session is gone");
  const other = DATA.slice();
  other[0] ^= 1;
  const lie = await client.request("POST", `/v2/other/blobs/uploads/?digest=${D}`, { body: other });
  assertError(lie, 400, "DIGEST_INVALID");
  assertEquals((await client.head(`/v2/other/blobs/${D}`)).status, 404, "not linked");
  assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA, "stored bytes unchanged");
  // A body cut short stores nothing and links nothing.
  const target = new URL(s.url);
  const fresh = randomBytes(50_000, 6);
  const conn = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
  await conn.write(new TextEncoder().encode(
    `POST /v2/cut/blobs/uploads/?digest=${digest(fresh)} HTTP/1.1\r\nHost: ${target.host}\r\n` +
      `Content-Length: ${fresh.length}\r\n\r\n`,
  ));
  await conn.write(fresh.subarray(0, 10_000));
  conn.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assertEquals((await client.head(`/v2/cut/blobs/${digest(fresh)}`)).status, 404);
  assertEquals((await s.driver.list("blobs/sha256")).length, 1, "only the first blob");
});

Deno.test("a whole body of a blob stored already is hashed and linked, not written", async () => {
  const inner = createMemoryDriver();
  const writes: string[] = [];
  const driver: StorageDriver = {
    ...inner,
    put: (key, data, options) => (writes.push(key), inner.put(key, data, options)),
    append: (key, chunks) => (writes.push(key), inner.append(key, chunks)),
  };
  await using s = await withServer("memory", { driver });
  assertEquals((await s.client.pushBlob("first", DATA)).status, 201);
  await s.client.startUpload("first"); // the session key is made once, here
  writes.length = 0;
  for (
    const push of [() => s.client.pushBlob("second", DATA), async () => {
      const location = await s.client.startUpload("third");
      return await s.client.request("PUT", withDigest(location, D), { body: DATA });
    }]
  ) {
    assertEquals((await push()).status, 201);
  }
  assertEquals(writes.sort(), [
    `repositories/second/_layers/${D.replace(":", "/")}`,
    `repositories/third/_layers/${D.replace(":", "/")}`,
  ]);
  assertEquals((await s.client.get(`/v2/third/blobs/${D}`)).body, DATA);
});

serverTest("mount from a repository that has the blob: 201", async ({ client }) => {
  await client.pushBlob("source", DATA);
  const res = await client.request("POST", `/v2/target/blobs/uploads/?mount=${D}&from=source`);
  assertEquals(res.status, 201);
  assertEquals(res.headers.get("docker-content-digest"), D);
  assertMatch(res.headers.get("location"), new RegExp(`/v2/target/blobs/${D}$`));
  assertEquals((await client.get(`/v2/target/blobs/${D}`)).body, DATA);
});

serverTest("mount from a repository lacking the blob: 202 with a fresh session", async (s) => {
  const { client } = s;
  await client.pushBlob("elsewhere", DATA);
  const cases = [
    `mount=${D}&from=empty`,
    `mount=${D}&from=BAD..name`,
    `mount=sha256:nothex&from=elsewhere`,
    `mount=${digest(new Uint8Array([9]))}&from=elsewhere`,
  ];
  for (const query of cases) {
    const res = await client.request("POST", `/v2/target/blobs/uploads/?${query}`);
    assertEquals(res.status, 202, query);
    const uuid = res.headers.get("docker-upload-uuid");
    assertMatch(uuid, UUID_RE);
    assertEquals(res.headers.get("range"), "0-0");
    // The session works.
    const status = await client.get(res.headers.get("location")!);
    assertEquals(status.status, 204, query);
  }
  assertEquals((await client.head(`/v2/target/blobs/${D}`)).status, 404, "not mounted");
});

serverTest("mount without from of a known blob: automatic mount, 201", async ({ client }) => {
  await client.pushBlob("somewhere", DATA);
  const res = await client.request("POST", `/v2/target/blobs/uploads/?mount=${D}`);
  assertEquals(res.status, 201);
  assertEquals((await client.get(`/v2/target/blobs/${D}`)).body, DATA);
  // An unknown blob without from: a session.
  const unknown = digest(new Uint8Array([7]));
  const miss = await client.request("POST", `/v2/target/blobs/uploads/?mount=${unknown}`);
  assertEquals(miss.status, 202);
});

serverTest(
  "chunked upload: PATCH with Content-Range, Range after each, GET status, PUT",
  async (s) => {
    const { client } = s;
    let location = await client.startUpload("app");
    const cuts = [0, 10_000, 10_001, 25_000, 30_000];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const res = await patch(client, location, DATA.slice(cuts[i], cuts[i + 1]), cuts[i]);
      assertEquals(res.status, 202, res.text);
      assertEquals(res.headers.get("range"), `0-${cuts[i + 1] - 1}`);
      assertMatch(res.headers.get("docker-upload-uuid"), UUID_RE);
      location = res.headers.get("location")!;
      const status = await client.get(location);
      assertEquals(status.status, 204);
      assertEquals(status.headers.get("range"), `0-${cuts[i + 1] - 1}`);
      assertEquals(status.headers.get("location"), location);
    }
    const put = await client.request("PUT", withDigest(location, D));
    assertEquals(put.status, 201, put.text);
    assertEquals(put.headers.get("location"), `${s.url}/v2/app/blobs/${D}`);
    assertEquals(put.headers.get("docker-content-digest"), D);
    assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);
    // The session is gone.
    assertError(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN");
  },
);

serverTest("out-of-order and repeated chunks are 416; the upload continues", async ({ client }) => {
  const location = await client.startUpload("app");
  assertEquals((await patch(client, location, DATA.slice(0, 100), 0)).status, 202);

  const gap = await patch(client, location, DATA.slice(200, 300), 200);
  assertError(gap, 416, "RANGE_INVALID", "gap");
  assertEquals(gap.headers.get("range"), "0-99");
  assertMatch(gap.headers.get("location"), /\/v2\/app\/blobs\/uploads\//);
  assertError(await patch(client, location, DATA.slice(0, 100), 0), 416, "RANGE_INVALID", "repeat");
  assertError(
    await patch(client, location, DATA.slice(50, 150), 50),
    416,
    "RANGE_INVALID",
    "overlap",
  );

  const status = await client.get(location);
  assertEquals(status.headers.get("range"), "0-99", "refused chunks changed nothing");
  assertEquals((await patch(client, location, DATA.slice(100), 100)).status, 202);
  assertEquals((await client.request("PUT", withDigest(location, D))).status, 201);
  assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);
});

serverTest("PATCH without Content-Range streams a whole layer (chunked encoding)", async (s) => {
  const { client } = s;
  const location = await client.startUpload("app");
  const parts = [DATA.slice(0, 7000), DATA.slice(7000, 7001), DATA.slice(7001)];
  const res = await client.request("PATCH", location, {
    body: streamOf(...parts),
    headers: { "content-type": "application/octet-stream" },
  });
  assertEquals(res.status, 202, res.text);
  assertEquals(res.headers.get("range"), `0-${DATA.length - 1}`);
  assertEquals(
    (await client.request("PUT", withDigest(res.headers.get("location")!, D))).status,
    201,
  );
  assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);
});

serverTest("two streamed PATCHes append", async ({ client }) => {
  const location = await client.startUpload("app");
  await client.request("PATCH", location, { body: streamOf(DATA.slice(0, 100)) });
  const res = await client.request("PATCH", location, { body: streamOf(DATA.slice(100)) });
  assertEquals(res.headers.get("range"), `0-${DATA.length - 1}`);
  assertEquals((await client.request("PUT", withDigest(location, D))).status, 201);
});

serverTest("PUT with the final chunk (with and without Content-Range): 201", async ({ client }) => {
  // Whole blob in the PUT (monolithic after POST).
  const one = await client.startUpload("app");
  const put = await client.request("PUT", withDigest(one, D), {
    body: DATA,
    headers: { "content-type": "application/octet-stream" },
  });
  assertEquals(put.status, 201, put.text);
  assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);

  // A chunk by PATCH, the last one in the PUT with Content-Range.
  const data = randomBytes(5000, 99);
  const two = await client.startUpload("app2");
  assertEquals((await patch(client, two, data.slice(0, 3000), 0)).status, 202);
  const last = await client.request("PUT", withDigest(two, digest(data)), {
    body: data.slice(3000),
    headers: { "content-range": "3000-4999" },
  });
  assertEquals(last.status, 201, last.text);
  assertEquals((await client.get(`/v2/app2/blobs/${digest(data)}`)).body, data);

  // A final chunk out of order is refused.
  const three = await client.startUpload("app3");
  await patch(client, three, data.slice(0, 10), 0);
  const bad = await client.request("PUT", withDigest(three, digest(data)), {
    body: data.slice(20),
    headers: { "content-range": `20-4999` },
  });
  assertError(bad, 416, "RANGE_INVALID");
  assertEquals((await client.head(`/v2/app3/blobs/${digest(data)}`)).status, 404);
});

serverTest("PUT with a wrong digest: 400 DIGEST_INVALID and nothing is stored", async (s) => {
  const { client } = s;
  const wrong = digest(new Uint8Array([1, 2, 3]));
  const location = await client.startUpload("app");
  await patch(client, location, DATA, 0);
  assertError(await client.request("PUT", withDigest(location, wrong)), 400, "DIGEST_INVALID");
  assertEquals((await client.head(`/v2/app/blobs/${wrong}`)).status, 404);
  assertEquals((await client.head(`/v2/app/blobs/${D}`)).status, 404);
  assertEquals(await s.driver.list("blobs"), [], "no blob bytes anywhere");

  // Monolithic POST with a wrong digest, and with a sha512 claim over other bytes.
  const mono = await client.request("POST", `/v2/app/blobs/uploads/?digest=${wrong}`, {
    body: DATA,
  });
  assertError(mono, 400, "DIGEST_INVALID");
  const wrong512 = digest(new Uint8Array([4]), "sha512");
  const mono512 = await client.request("POST", `/v2/app/blobs/uploads/?digest=${wrong512}`, {
    body: DATA,
  });
  assertError(mono512, 400, "DIGEST_INVALID");
  assertEquals(await s.driver.list("blobs"), []);
  assertEquals(await s.driver.list("_uploads"), [], "failed sessions are dropped");
  // A PUT without a digest, or a malformed one, is refused and keeps the session.
  const keep = await client.startUpload("app");
  assertError(await client.request("PUT", keep), 400, "DIGEST_INVALID");
  assertError(await client.request("PUT", withDigest(keep, "sha256:zz")), 400, "DIGEST_INVALID");
  assertEquals((await client.get(keep)).status, 204);
});

serverTest("DELETE an upload: 204, then 404 everywhere", async ({ client }) => {
  const location = await client.startUpload("app");
  await patch(client, location, DATA.slice(0, 10), 0);
  const del = await client.request("DELETE", location);
  assertEquals(del.status, 204);
  assertError(await client.request("DELETE", location), 404, "BLOB_UPLOAD_UNKNOWN");
  assertError(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN");
  assertError(await patch(client, location, DATA.slice(10, 20), 10), 404, "BLOB_UPLOAD_UNKNOWN");
  assertError(await client.request("PUT", withDigest(location, D)), 404, "BLOB_UPLOAD_UNKNOWN");
});

serverTest("a session belongs to its repository; unknown ids are 404", async ({ client }) => {
  const location = await client.startUpload("app");
  const foreign = location.replace("/v2/app/", "/v2/other/");
  assertError(await client.get(foreign), 404, "BLOB_UPLOAD_UNKNOWN");
  assertError(await client.request("PATCH", foreign, { body: DATA }), 404, "BLOB_UPLOAD_UNKNOWN");
  for (const id of ["0f8fad5b-d9cb-469f-a165-70867728950e", "not-a-uuid", "A%2e%2e", "x..y"]) {
    assertError(await client.get(`/v2/app/blobs/uploads/${id}`), 404, "BLOB_UPLOAD_UNKNOWN", id);
  }
  assertEquals((await client.get(location)).status, 204);
});

serverTest("a session is stored only once it has bytes; its signed Location vouches", async (s) => {
  const { client } = s;
  const location = await client.startUpload("app");
  assertEquals(await s.driver.list("_uploads"), [], "POST writes nothing");
  assertEquals((await client.get(location)).headers.get("range"), "0-0");
  const url = new URL(location);
  const state = url.searchParams.get("_state")!;
  const [startedAt, mac] = state.split(".");
  const forged = (value: string | undefined) => {
    const copy = new URL(url);
    if (value === undefined) copy.searchParams.delete("_state");
    else copy.searchParams.set("_state", value);
    return copy.toString();
  };
  const flipped = (mac[0] === "A" ? "B" : "A") + mac.slice(1);
  const later = (parseInt(startedAt, 36) + 1).toString(36);
  for (
    const bad of [`${startedAt}.${flipped}`, `${later}.${mac}`, `${startedAt}.`, "x", undefined]
  ) {
    assertError(await client.get(forged(bad)), 404, "BLOB_UPLOAD_UNKNOWN", String(bad));
  }
  // Once it holds bytes, its info on disk vouches, and its Location is the plain one: ended,
  // it is unknown to every process (a signed Location cannot say it ended).
  const patched = await patch(client, location, DATA.slice(0, 100), 0);
  assertEquals(patched.headers.get("location"), forged(undefined));
  assertEquals(await s.driver.list("_uploads"), [url.pathname.split("/").pop()]);
  assertEquals((await client.get(forged(undefined))).headers.get("range"), "0-99");
  assertEquals((await client.get(location)).headers.get("location"), forged(undefined));
  const rest = await patch(client, forged(undefined), DATA.slice(100), 100);
  assertEquals(
    (await client.request("PUT", withDigest(rest.headers.get("location")!, D))).status,
    201,
  );
  assertError(await client.get(forged(undefined)), 404, "BLOB_UPLOAD_UNKNOWN");
  // Ended sessions are unknown: cancelled, or finished with a whole body.
  const cancelled = await client.startUpload("app");
  assertEquals((await client.request("DELETE", cancelled)).status, 204);
  assertError(await client.get(cancelled), 404, "BLOB_UPLOAD_UNKNOWN");
  const finished = await client.startUpload("app");
  assertEquals((await client.request("PUT", withDigest(finished, D), { body: DATA })).status, 201);
  assertError(await client.get(finished), 404, "BLOB_UPLOAD_UNKNOWN");
  assertError(await client.request("PUT", withDigest(finished, D)), 404, "BLOB_UPLOAD_UNKNOWN");
});

serverTest("a session that stored nothing is unknown after the upload TTL", async ({ client }) => {
  const location = await client.startUpload("app");
  assertEquals((await client.get(location)).status, 204);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assertError(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN");
  assertError(await patch(client, location, DATA.slice(0, 10), 0), 404, "BLOB_UPLOAD_UNKNOWN");
}, { uploadTtl: 1_000 });

serverTest("a chunk whose length disagrees with Content-Range is refused", async ({ client }) => {
  const location = await client.startUpload("app");
  // Content-Length (from the body) says 10, the range says 20.
  const res = await client.request("PATCH", location, {
    body: DATA.slice(0, 10),
    headers: { "content-range": "0-19" },
  });
  assertEquals(res.status, 416, res.text);
  assertEquals((await client.get(location)).headers.get("range"), "0-0");
  // Streamed (no Content-Length) and short: SIZE_INVALID after the fact.
  const short = await client.request("PATCH", location, {
    body: streamOf(DATA.slice(0, 10)),
    headers: { "content-range": "0-19" },
  });
  assertError(short, 400, "SIZE_INVALID");
});

serverTest("a blob pushed in many small chunks is byte-identical", async ({ client }) => {
  const data = concat(randomBytes(4097, 1), randomBytes(1, 2), randomBytes(8191, 3));
  const res = await client.pushBlobChunked("app", data, 1024);
  assertEquals(res.status, 201, res.text);
  assertEquals((await client.get(`/v2/app/blobs/${digest(data)}`)).body, data);
});

serverTest(
  "an interrupted streamed PATCH keeps the bytes received; the upload resumes",
  async (s) => {
    const { client } = s;
    const location = await client.startUpload("app");
    const target = new URL(location);
    const conn = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
    const encoder = new TextEncoder();
    const first = DATA.slice(0, 20_000);
    await conn.write(encoder.encode(
      `PATCH ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n${first.length.toString(16)}\r\n`,
    ));
    for (let n = 0; n < first.length;) n += await conn.write(first.subarray(n));
    await conn.write(encoder.encode("\r\n1000\r\npartial")); // a frame cut short, then gone
    conn.close();

    // The server notices the broken body; the session then reports what it stored.
    let range: string | null = null;
    for (let i = 0; i < 100; i++) {
      const status = await client.get(location);
      assertEquals(status.status, 204);
      range = status.headers.get("range");
      if (range === `0-${first.length - 1}` || range === `0-${first.length + 6}`) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const stored = Number(range!.split("-")[1]) + 1;
    assert(stored >= first.length, `kept the complete frame (range ${range})`);
    // A client resumes from the reported offset and finishes.
    const rest = await patch(client, location, DATA.slice(stored), stored);
    if (stored === first.length) {
      assertEquals(rest.status, 202, rest.text);
      assertEquals((await client.request("PUT", withDigest(location, D))).status, 201);
      assertEquals((await client.get(`/v2/app/blobs/${D}`)).body, DATA);
    } else {
      // The partial frame's bytes ("partial") were kept: the blob cannot match; the PUT says so.
      assertEquals(rest.status, 202);
      assertError(await client.request("PUT", withDigest(location, D)), 400, "DIGEST_INVALID");
    }
  },
);
