// Unit tests of src/http.ts readLimited: the body budget is given back whatever the body, and a
// body that breaks off is the client's error (400), never a 500.

import { createByteBudget } from "../src/budget.ts";
import { RegistryError } from "../src/errors.ts";
import { readLimited } from "../src/http.ts";
import { assertEquals, assertRejects, text } from "./helpers.ts";

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
