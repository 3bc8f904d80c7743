// Unit tests of src/proxy/flights.ts: one download shared by every reader, the first byte before
// the last, the last only after the commit, slow and late readers from the store, disconnects.

import { type FlightDeps, startFlight } from "../../src/proxy/flights.ts";
import { parseDigest } from "../../src/grammar.ts";
import { createStore } from "../../src/store/store.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  concat,
  digest,
  gatedDriver,
  randomBytes,
  readAll,
} from "../helpers.ts";

/** The digest of `data`, as a flight takes it. */
const digestOf = (data: Uint8Array) => parseDigest(digest(data))!;

/** An upstream body the test feeds chunk by chunk. */
function feed() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  return {
    body,
    push: (chunk: Uint8Array) => controller.enqueue(chunk),
    end: () => controller.close(),
    error: (e: Error) => controller.error(e),
  };
}

/**
 * A memory store for one blob: its ingest and stored reads, as src/proxy/blobs.ts wires them.
 * `gate` holds the storage's writes until it resolves; `failWrites` makes them fail.
 */
function memoryStore(data: Uint8Array, options: Parameters<typeof gatedDriver>[0] = {}) {
  const store = createStore({ driver: gatedDriver(options).driver });
  const digest = digestOf(data);
  const deps: FlightDeps = {
    ingest: (chunks) => store.uploads.ingest("up/app", digest, chunks),
    readStored: (offset) =>
      store.blobs.read("up/app", digest, offset ? { start: offset, end: data.length } : undefined),
  };
  const stored = async () =>
    await store.blobs.size("up/app", digest) === undefined
      ? undefined
      : await readAll(await store.blobs.read("up/app", digest));
  return { deps, stored };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("flight: a reader gets the first bytes before the download ends, the last once verified", async () => {
  const upstream = feed();
  const data = concat(
    new Uint8Array(10).fill(1),
    new Uint8Array(10).fill(2),
    new Uint8Array(10).fill(3),
  );
  const { deps, stored } = memoryStore(data);
  const flight = startFlight({ body: upstream.body, size: 30, abort() {} }, deps);
  const reader = flight.join()!.getReader();
  upstream.push(data.slice(0, 10));
  upstream.push(data.slice(10, 20));
  assertEquals((await reader.read()).value, data.slice(0, 10), "chunk one, chunk three unsent");
  upstream.push(data.slice(20));
  assertEquals((await reader.read()).value, data.slice(10, 20));
  upstream.end();
  assertEquals((await reader.read()).value, data.slice(20), "the last, once the body hashed right");
  assertEquals((await reader.read()).done, true);
  await flight.done;
  assertEquals(await stored(), data);
});

Deno.test("flight: readers finish without waiting for a slow store; done waits for it", async () => {
  const upstream = feed();
  let open!: () => void;
  const data = randomBytes(500_000, 2);
  const { deps, stored } = memoryStore(data, { gate: new Promise((resolve) => open = resolve) });
  const flight = startFlight({ body: upstream.body, size: data.length, abort() {} }, deps);
  const reading = readAll(flight.join()!);
  upstream.push(data.slice(0, 200_000));
  upstream.push(data.slice(200_000));
  upstream.end();
  assertEquals(await reading, data);
  let finished = false;
  flight.done.then(() => finished = true);
  await tick();
  assertEquals([finished, await stored()], [false, undefined], "the write is still going");
  open();
  await flight.done;
  assertEquals(await stored(), data);
});

Deno.test("flight: readers joining early share the one download", async () => {
  const upstream = feed();
  const data = randomBytes(1_000_000, 9);
  const { deps, stored } = memoryStore(data);
  const flight = startFlight({ body: upstream.body, size: data.length, abort() {} }, deps);
  const early = readAll(flight.join()!);
  upstream.push(data.slice(0, 300_000));
  await tick();
  // Joins after the first chunk went out: gets it from the flight's head, then follows.
  const later = readAll(flight.join()!);
  upstream.push(data.slice(300_000));
  upstream.end();
  assertEquals(await early, data);
  assertEquals(await later, data);
  await flight.done;
  assertEquals(await stored(), data);
});

Deno.test("flight: a reader too late to join waits for the commit and reads the store", async () => {
  const upstream = feed();
  const data = randomBytes(12 * 1024 * 1024, 3);
  const { deps } = memoryStore(data);
  const flight = startFlight({ body: upstream.body, size: data.length, abort() {} }, deps);
  const first = readAll(flight.join()!);
  for (let at = 0; at < 10 * 1024 * 1024; at += 1024 * 1024) {
    upstream.push(data.slice(at, at + 1024 * 1024));
  }
  for (let i = 0; i < 50 && flight.join(); i++) await tick();
  assertEquals(flight.join(), undefined, "past the head: too late to follow");
  upstream.push(data.slice(10 * 1024 * 1024));
  upstream.end();
  await flight.done;
  assertEquals(await first, data);
});

Deno.test("flight: a reader that falls far behind finishes from the store", async () => {
  const upstream = feed();
  const data = randomBytes(40 * 1024 * 1024, 5);
  const { deps } = memoryStore(data);
  const flight = startFlight({ body: upstream.body, size: data.length, abort() {} }, deps);
  const slow = flight.join()!.getReader();
  // The download runs far ahead of a reader that reads nothing.
  for (let at = 0; at < data.length; at += 1024 * 1024) {
    upstream.push(data.slice(at, at + 1024 * 1024));
  }
  upstream.end();
  await flight.done;
  const parts: Uint8Array[] = [];
  while (true) {
    const { done, value } = await slow.read();
    if (done) break;
    parts.push(value);
  }
  assertEquals(concat(...parts), data);
});

Deno.test("flight: wrong bytes break the readers off before the last chunk and store nothing", async () => {
  const upstream = feed();
  const { deps, stored } = memoryStore(new Uint8Array(20).fill(7)); // the digest of other bytes
  const flight = startFlight({ body: upstream.body, size: 20, abort() {} }, deps);
  const reader = flight.join()!.getReader();
  upstream.push(new Uint8Array(10));
  upstream.push(new Uint8Array(10));
  upstream.end();
  assertEquals((await reader.read()).value?.length, 10);
  await assertRejects(() => reader.read(), Error, "did not match");
  await assertRejects(() => flight.done, Error, "did not match");
  assertEquals(await stored(), undefined);
});

Deno.test("flight: a reader that goes away leaves the download to the others", async () => {
  const upstream = feed();
  const data = randomBytes(200_000, 8);
  const { deps, stored } = memoryStore(data);
  const flight = startFlight({ body: upstream.body, size: data.length, abort() {} }, deps);
  const leaving = flight.join()!;
  const staying = readAll(flight.join()!);
  upstream.push(data.slice(0, 100_000));
  upstream.push(data.slice(100_000, 150_000));
  const reader = leaving.getReader();
  await reader.read();
  await reader.cancel();
  // One that leaves before reading anything at all.
  await flight.join()!.cancel();
  upstream.push(data.slice(150_000));
  upstream.end();
  assertEquals(await staying, data);
  await flight.done;
  assertEquals(await stored(), data);
});

Deno.test("flight: an upstream that breaks off fails the readers and stores nothing", async () => {
  const upstream = feed();
  const { deps, stored } = memoryStore(new Uint8Array(100));
  const flight = startFlight({ body: upstream.body, size: 100, abort() {} }, deps);
  const reading = readAll(flight.join()!);
  upstream.push(new Uint8Array(10));
  upstream.error(new Error("connection reset"));
  await assertRejects(() => reading, Error, "connection reset");
  await assertRejects(() => flight.done, Error, "connection reset");
  assertEquals(await stored(), undefined);
});

Deno.test("flight: a store that fails leaves the readers their bytes; done reports it", async () => {
  const upstream = feed();
  const data = randomBytes(20 * 1024 * 1024, 4); // more than the write may lag behind
  const { deps } = memoryStore(data, { failWrites: true });
  const flight = startFlight({ body: upstream.body, size: data.length, abort() {} }, deps);
  const reading = readAll(flight.join()!);
  for (let at = 0; at < data.length; at += 1024 * 1024) {
    upstream.push(data.slice(at, at + 1024 * 1024));
  }
  upstream.end();
  assertEquals(await reading, data);
  await assertRejects(() => flight.done);
});

Deno.test("flight: an upstream that goes silent is aborted after the idle timeout", async () => {
  const upstream = feed();
  const { deps } = memoryStore(new Uint8Array(100));
  let aborted: Error | undefined;
  const flight = startFlight({
    body: upstream.body,
    size: 100,
    abort: (reason) => {
      aborted = reason;
      upstream.error(reason);
    },
  }, { ...deps, idleTimeout: 30 });
  upstream.push(new Uint8Array(10));
  await assertRejects(() => flight.done, Error, "sent nothing for 30 ms");
  assert(aborted, "the request was aborted");
});

Deno.test("flight: a byte stream is read in large chunks (BYOB), whatever its own chunks", async () => {
  const data = randomBytes(3 * 1024 * 1024 + 1000, 11);
  let at = 0;
  const body = new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (at >= data.length) {
        controller.close();
        return controller.byobRequest?.respond(0); // a pending BYOB read learns of the end
      }
      controller.enqueue(data.slice(at, at + 64 * 1024));
      at += 64 * 1024;
    },
  });
  const { deps, stored } = memoryStore(data);
  const flight = startFlight({ body, size: data.length, abort() {} }, deps);
  const sizes: number[] = [];
  const parts: Uint8Array[] = [];
  for await (const chunk of flight.join()!) {
    sizes.push(chunk.length);
    parts.push(chunk);
  }
  assertEquals(concat(...parts), data);
  assert(sizes.slice(0, -1).every((n) => n >= 512 * 1024), `chunk sizes ${sizes}`);
  await flight.done;
  assertEquals(await stored(), data);
});
