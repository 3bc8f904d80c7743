// Unit tests of src/http.ts: readLimited gives the body budget back whatever the body, and a body
// that breaks off is the client's error (400), never a 500; bodyChunks lets the event loop go
// round inside a body that never runs dry, chunked or not.

import { createByteBudget } from "../src/budget.ts";
import { RegistryError } from "../src/errors.ts";
import { bodyChunks, readLimited } from "../src/http.ts";
import { assert, assertEquals, assertRejects, text } from "./helpers.ts";

Deno.test("readLimited: a Content-Length that is no number (`2, 2`) reserves the limit, gives it back", async () => {
  const budget = createByteBudget(1000);
  // Deno joins duplicate Content-Length headers so; NaN taken from the budget kept it NaN for good.
  const request = new Request("http://registry/", {
    method: "PUT",
    headers: { "content-length": "2, 2" },
    body: "{}",
  });
  assertEquals(text(await readLimited({ request, budget }, 500)), "{}");
  assertEquals(budget.used, 0);
  assertEquals(budget.take(1000), true, "the whole budget is there");
});

Deno.test("readLimited: a body that breaks off is 400 SIZE_INVALID, and the budget comes back", async () => {
  const budget = createByteBudget(1000);
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new Deno.errors.BadResource("Cannot read request body"));
      sent = true;
      controller.enqueue(new TextEncoder().encode("{"));
    },
  });
  const request = new Request(
    "http://registry/",
    { method: "PUT", body, duplex: "half" } as RequestInit,
  );
  const error = await assertRejects(() => readLimited({ request, budget }, 500), RegistryError);
  assertEquals([(error as RegistryError).code, (error as RegistryError).status], [
    "SIZE_INVALID",
    400,
  ]);
  assertEquals(budget.used, 0);
});

/** A body whose bytes are always there (a fast client): every read completes at once. */
function endlessRequest(headers: Record<string, string>): Request {
  // A byte stream, as Deno's request bodies are: bodyChunks reads it with views of its own.
  const body = new ReadableStream({
    type: "bytes",
    pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest;
      if (request) request.respond((request.view as Uint8Array).byteLength);
      else controller.enqueue(new Uint8Array(64 * 1024));
    },
  });
  return new Request("http://registry/", { method: "PUT", body, headers });
}

/** Bytes read before a timer set at the start ran, reading at most `limit`. */
async function readBeforeTimer(request: Request, limit: number): Promise<number> {
  let timerRan = false;
  const timer = setTimeout(() => timerRan = true, 0);
  let read = 0;
  for await (const chunk of bodyChunks(request)) {
    read += chunk.length;
    if (timerRan || read >= limit) break;
  }
  clearTimeout(timer);
  return timerRan ? read : Infinity;
}

for (
  const [kind, headers] of [
    ["a Content-Length", { "content-length": String(256 * 1024 * 1024) }],
    ["a chunked", { "transfer-encoding": "chunked" }],
  ] as const
) {
  Deno.test(`bodyChunks: ${kind} body whose bytes are always there lets a timer run`, async () => {
    // Before, the whole body was read before any timer, socket or other request got a turn.
    const limit = 256 * 1024 * 1024;
    const read = await readBeforeTimer(endlessRequest(headers), limit);
    assert(read < limit, "the timer waited for the whole body");
  });
}
