// Unit tests of src/proxy/flights.ts: one download shared by every reader, the first byte before
// the last, the last only after the commit, slow and late readers from the store, disconnects.

import { type FlightDeps, startFlight } from "../../src/proxy/flights.ts";
import { parseDigest } from "../../src/grammar.ts";
import { assert, assertEquals, assertRejects, concat, digest, randomBytes } from "../helpers.ts";

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

/** A store that keeps committed bytes; `gate` holds a commit's end until it resolves. */
function memoryStore(gate: Promise<void> = Promise.resolve()) {
  const stored: { bytes?: Uint8Array; commits: number } = { commits: 0 };
  const deps: FlightDeps = {
    async commit(chunks) {
      stored.commits++;
      const parts: Uint8Array[] = [];
      for await (const chunk of chunks) parts.push(chunk);
      await gate;
      stored.bytes = concat(...parts);
    },
    readStored(offset) {
      assert(stored.bytes, "read before commit");
      return Promise.resolve(ReadableStream.from([stored.bytes.subarray(offset)]));
    },
  };
  return { stored, deps };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return concat(...parts);
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("flight: a reader gets the first bytes before the download ends, the last once verified", async () => {
  const upstream = feed();
  const { stored, deps } = memoryStore();
  const data = concat(
    new Uint8Array(10).fill(1),
    new Uint8Array(10).fill(2),
    new Uint8Array(10).fill(3),
  );
  const flight = startFlight(
    { digest: digestOf(data), body: upstream.body, size: 30, abort() {} },
    deps,
  );
  const reader = flight.join()!.getReader();
  upstream.push(data.subarray(0, 10));
  upstream.push(data.subarray(10, 20));
  assertEquals((await reader.read()).value, data.subarray(0, 10), "chunk one, chunk three unsent");
  upstream.push(data.subarray(20));
  assertEquals((await reader.read()).value, data.subarray(10, 20));
  upstream.end();
  assertEquals(
    (await reader.read()).value,
    data.subarray(20),
    "the last, once the body hashed right",
  );
  assertEquals((await reader.read()).done, true);
  await flight.done;
  assertEquals(stored.bytes, data);
});

Deno.test("flight: readers finish without waiting for a slow store; done waits for it", async () => {
  const upstream = feed();
  let open!: () => void;
  const { stored, deps } = memoryStore(new Promise((resolve) => open = resolve));
  const data = randomBytes(500_000, 2);
  const flight = startFlight({
    digest: digestOf(data),
    body: upstream.body,
    size: data.length,
    abort() {},
  }, deps);
  const reading = readAll(flight.join()!);
  upstream.push(data.subarray(0, 200_000));
  upstream.push(data.subarray(200_000));
  upstream.end();
  assertEquals(await reading, data);
  let finished = false;
  flight.done.then(() => finished = true);
  await tick();
  assertEquals([finished, stored.bytes], [false, undefined], "the commit is still going");
  open();
  await flight.done;
  assertEquals(stored.bytes, data);
});

Deno.test("flight: readers joining early share the one download", async () => {
  const upstream = feed();
  const { stored, deps } = memoryStore();
  const data = randomBytes(1_000_000, 9);
  const flight = startFlight({
    digest: digestOf(data),
    body: upstream.body,
    size: data.length,
    abort() {},
  }, deps);
  const early = readAll(flight.join()!);
  upstream.push(data.subarray(0, 300_000));
  await tick();
  // Joins after the first chunk went out: gets it from the flight's head, then follows.
  const later = readAll(flight.join()!);
  upstream.push(data.subarray(300_000));
  upstream.end();
  assertEquals(await early, data);
  assertEquals(await later, data);
  await flight.done;
  assertEquals(stored.commits, 1);
});

Deno.test("flight: a reader too late to join waits for the commit and reads the store", async () => {
  const upstream = feed();
  const { deps } = memoryStore();
  const data = randomBytes(12 * 1024 * 1024, 3);
  const flight = startFlight({
    digest: digestOf(data),
    body: upstream.body,
    size: data.length,
    abort() {},
  }, deps);
  const first = readAll(flight.join()!);
  for (let at = 0; at < 10 * 1024 * 1024; at += 1024 * 1024) {
    upstream.push(data.subarray(at, at + 1024 * 1024));
  }
  for (let i = 0; i < 20 && flight.join(); i++) await tick();
  assertEquals(flight.join(), undefined, "past the head: too late to follow");
  upstream.push(data.subarray(10 * 1024 * 1024));
  upstream.end();
  await flight.done;
  assertEquals(await first, data);
});

Deno.test("flight: a reader that falls far behind finishes from the store", async () => {
  const upstream = feed();
  const { deps } = memoryStore();
  const data = randomBytes(40 * 1024 * 1024, 5);
  const flight = startFlight({
    digest: digestOf(data),
    body: upstream.body,
    size: data.length,
    abort() {},
  }, deps);
  const slow = flight.join()!.getReader();
  // The download runs far ahead of a reader that reads nothing.
  for (let at = 0; at < data.length; at += 1024 * 1024) {
    upstream.push(data.subarray(at, at + 1024 * 1024));
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
  const { stored, deps } = memoryStore();
  const claimed = digestOf(new Uint8Array(20).fill(7));
  const flight = startFlight({ digest: claimed, body: upstream.body, size: 20, abort() {} }, deps);
  const reader = flight.join()!.getReader();
  upstream.push(new Uint8Array(10));
  upstream.push(new Uint8Array(10));
  upstream.end();
  assertEquals((await reader.read()).value?.length, 10);
  await assertRejects(() => reader.read(), Error, "did not match");
  await assertRejects(() => flight.done, Error, "did not match");
  assertEquals(stored.bytes, undefined);
});

Deno.test("flight: a reader that goes away leaves the download to the others", async () => {
  const upstream = feed();
  const { stored, deps } = memoryStore();
  const data = randomBytes(200_000, 8);
  const flight = startFlight({
    digest: digestOf(data),
    body: upstream.body,
    size: data.length,
    abort() {},
  }, deps);
  const leaving = flight.join()!;
  const staying = readAll(flight.join()!);
  upstream.push(data.subarray(0, 100_000));
  upstream.push(data.subarray(100_000, 150_000));
  const reader = leaving.getReader();
  await reader.read();
  await reader.cancel();
  // One that leaves before reading anything at all.
  await flight.join()!.cancel();
  upstream.push(data.subarray(150_000));
  upstream.end();
  assertEquals(await staying, data);
  await flight.done;
  assertEquals(stored.bytes, data);
});

Deno.test("flight: an upstream that breaks off fails the readers and stores nothing", async () => {
  const upstream = feed();
  const { stored, deps } = memoryStore();
  const flight = startFlight({
    digest: digestOf(new Uint8Array(100)),
    body: upstream.body,
    size: 100,
    abort() {},
  }, deps);
  const reading = readAll(flight.join()!);
  upstream.push(new Uint8Array(10));
  upstream.error(new Error("connection reset"));
  await assertRejects(() => reading, Error, "connection reset");
  await assertRejects(() => flight.done, Error, "connection reset");
  assertEquals(stored.bytes, undefined);
});

Deno.test("flight: a store that fails leaves the readers their bytes; done reports it", async () => {
  const upstream = feed();
  const data = randomBytes(20 * 1024 * 1024, 4); // more than the store may lag behind
  const flight = startFlight({
    digest: digestOf(data),
    body: upstream.body,
    size: data.length,
    abort() {},
  }, {
    commit: () => Promise.reject(new Error("disk full")),
    readStored: () => Promise.reject(new Error("nothing stored")),
  });
  const reading = readAll(flight.join()!);
  for (let at = 0; at < data.length; at += 1024 * 1024) {
    upstream.push(data.subarray(at, at + 1024 * 1024));
  }
  upstream.end();
  assertEquals(await reading, data);
  await assertRejects(() => flight.done, Error, "disk full");
});

Deno.test("flight: an upstream that goes silent is aborted after the idle timeout", async () => {
  const upstream = feed();
  const { deps } = memoryStore();
  let aborted: Error | undefined;
  const flight = startFlight({
    digest: digestOf(new Uint8Array(100)),
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
