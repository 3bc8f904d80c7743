// Unit tests of parseRange (src/api/blobs.ts): RFC 9110 single byte ranges against a blob size.
// Satisfiable ranges become [start, end); unsatisfiable ones are flagged; the rest are ignored.

import { parseRange } from "../../src/api/blobs.ts";
import { assertEquals } from "../helpers.ts";

Deno.test("parseRange: table", () => {
  const cases: [string | null, number, ReturnType<typeof parseRange>][] = [
    [null, 10, undefined],
    ["", 10, undefined],
    ["bytes=0-0", 10, { start: 0, end: 1 }],
    ["bytes=0-9", 10, { start: 0, end: 10 }],
    ["bytes=2-5", 10, { start: 2, end: 6 }],
    ["bytes=2-", 10, { start: 2, end: 10 }],
    ["bytes=9-", 10, { start: 9, end: 10 }],
    ["bytes=5-100", 10, { start: 5, end: 10 }], // last clamped to size - 1
    ["bytes=-3", 10, { start: 7, end: 10 }], // suffix
    ["bytes=-100", 10, { start: 0, end: 10 }], // suffix longer than the blob
    [" bytes=1-2 ", 10, { start: 1, end: 3 }],
    ["bytes=10-", 10, "unsatisfiable"],
    ["bytes=10-20", 10, "unsatisfiable"],
    ["bytes=-0", 10, "unsatisfiable"],
    ["bytes=0-", 0, "unsatisfiable"],
    ["bytes=-5", 0, "unsatisfiable"],
    ["bytes=5-2", 10, undefined], // invalid: ignored, whole blob
    ["bytes=-", 10, undefined],
    ["bytes=0-1,3-4", 10, undefined], // several ranges: ignored
    ["items=0-1", 10, undefined],
    ["bytes 0-1", 10, undefined],
    ["bytes=a-b", 10, undefined],
    ["0-1", 10, undefined],
  ];
  for (const [header, size, expected] of cases) {
    assertEquals(parseRange(header, size), expected, `${JSON.stringify(header)} of ${size}`);
  }
});
