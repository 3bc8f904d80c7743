// Unit tests of src/errors.ts: the code table's statuses and the rendered `{"errors":[…]}` body.
// Statuses follow the checklist's table (distribution's errcode/register.go).

import { ERROR_CODES, errorResponse, RegistryError } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./helpers.ts";

Deno.test("errors: every code has the status of the spec's table", () => {
  const expected: Record<string, number> = {
    BLOB_UNKNOWN: 404,
    BLOB_UPLOAD_INVALID: 400,
    BLOB_UPLOAD_UNKNOWN: 404,
    DIGEST_INVALID: 400,
    MANIFEST_BLOB_UNKNOWN: 400,
    MANIFEST_INVALID: 400,
    MANIFEST_UNKNOWN: 404,
    NAME_INVALID: 400,
    NAME_UNKNOWN: 404,
    SIZE_INVALID: 400,
    UNAUTHORIZED: 401,
    DENIED: 403,
    UNSUPPORTED: 405,
    TOOMANYREQUESTS: 429,
    TAG_INVALID: 400,
    PAGINATION_NUMBER_INVALID: 400,
    RANGE_INVALID: 416,
    UNKNOWN: 500,
    UNAVAILABLE: 503,
  };
  for (const [code, status] of Object.entries(expected)) {
    assertEquals(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, status, code);
    assert(/^[A-Z_]+$/.test(code));
    assert(ERROR_CODES[code as keyof typeof ERROR_CODES].message.length > 0, `${code} message`);
  }
});

Deno.test("errors: RegistryError carries code, table status and message by default", () => {
  const error = new RegistryError("BLOB_UNKNOWN");
  assert(error instanceof Error);
  assertEquals(error.name, "RegistryError");
  assertEquals(error.code, "BLOB_UNKNOWN");
  assertEquals(error.status, 404);
  assertEquals(error.message, ERROR_CODES.BLOB_UNKNOWN.message);
  assertEquals(error.headers, {});
  assertEquals(error.detail, undefined);
});

Deno.test("errors: status, headers and detail can be overridden", () => {
  const error = new RegistryError("SIZE_INVALID", "too big", {
    status: 413,
    headers: { "x-a": "1" },
    detail: { limit: 4 },
  });
  assertEquals([error.status, error.message, error.headers, error.detail], [413, "too big", {
    "x-a": "1",
  }, { limit: 4 }]);
});

Deno.test("errors: errorResponse renders the spec's body with status and headers", async () => {
  const response = errorResponse(
    new RegistryError("RANGE_INVALID", "nope", {
      status: 416,
      headers: { "content-range": "bytes */10" },
      detail: { n: 1 },
    }),
  );
  assertEquals(response.status, 416);
  assertMatch(response.headers.get("content-type"), /^application\/json/);
  assertEquals(response.headers.get("content-range"), "bytes */10");
  assertEquals(await response.json(), {
    errors: [{ code: "RANGE_INVALID", message: "nope", detail: { n: 1 } }],
  });
});

Deno.test("errors: a missing detail renders as {}, and HEAD gets no body", async () => {
  const get = errorResponse(new RegistryError("NAME_UNKNOWN"));
  assertEquals((await get.json()).errors[0].detail, {});
  const head = errorResponse(new RegistryError("NAME_UNKNOWN"), "HEAD");
  assertEquals(head.status, 404);
  assertEquals(head.body, null);
});
