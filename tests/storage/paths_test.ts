// Table test of src/storage/paths.ts: every key builder, its exact key, and that the key is valid.
// A new function in paths.ts fails the coverage test until it has a row here.

import * as paths from "../../src/storage/paths.ts";
import { checkKey } from "../../src/storage/driver.ts";
import { parseDigest } from "../../src/grammar.ts";
import { assert, assertEquals } from "../helpers.ts";

const HEX = "0123456789abcdef".repeat(4);
const D = parseDigest(`sha256:${HEX}`)!;
const D2 = parseDigest(`sha256:${"f".repeat(64)}`)!;
const D512 = parseDigest(`sha512:${"ab".repeat(64)}`)!;
const UUID = "0f8fad5b-d9cb-469f-a165-70867728950e";

type Row = [fn: string, args: unknown[], expected: string];

const ROWS: Row[] = [
  ["blobPath", [D], `blobs/sha256/01/${HEX}`],
  ["blobPath", [D512], `blobs/sha512/ab/${"ab".repeat(64)}`],
  ["repositoryPath", ["library/alpine"], "repositories/library/alpine"],
  ["layerLinkPath", ["a", D], `repositories/a/_layers/sha256/${HEX}`],
  [
    "layerLinkPath",
    ["org/team/app", D512],
    `repositories/org/team/app/_layers/sha512/${"ab".repeat(64)}`,
  ],
  ["layersPath", ["a/b"], "repositories/a/b/_layers"],
  ["manifestsPath", ["a"], "repositories/a/_manifests"],
  ["revisionLinkPath", ["a/b", D], `repositories/a/b/_manifests/revisions/sha256/${HEX}`],
  ["revisionsPath", ["a"], "repositories/a/_manifests/revisions"],
  ["tagsPath", ["x.y/z"], "repositories/x.y/z/_manifests/tags"],
  ["tagPath", ["a", "v1.0"], "repositories/a/_manifests/tags/v1.0"],
  ["tagPath", ["a", "_under"], "repositories/a/_manifests/tags/_under"],
  ["referrersPath", ["a", D], `repositories/a/_referrers/sha256/${HEX}`],
  [
    "referrerPath",
    ["a", D, D2],
    `repositories/a/_referrers/sha256/${HEX}/sha256-${"f".repeat(64)}`,
  ],
  ["referrerEntry", [D2], `sha256-${"f".repeat(64)}`],
  ["allReferrersPath", ["a/b"], "repositories/a/b/_referrers"],
  ["quarantinePath", [D], `_quarantine/blobs/sha256/${HEX}`],
  ["catalogEntryPath", ["org/team/app"], "_catalog/org~team~app"],
  ["catalogEntryPath", ["alpine"], "_catalog/alpine"],
  ["pullsPath", ["org/team/app"], "_pulls/org~team~app"],
  ["pullsPath", ["alpine"], "_pulls/alpine"],
  ["uploadPath", [UUID], `_uploads/${UUID}`],
  ["uploadInfoPath", [UUID], `_uploads/${UUID}/info`],
  ["uploadDataPath", [UUID], `_uploads/${UUID}/data`],
  ["eventsPath", ["ci"], "_events/ci"],
  [
    "eventBatchPath",
    ["ci", "1795944133000-0000000001-0a1b2c3d-7"],
    "_events/ci/1795944133000-0000000001-0a1b2c3d-7",
  ],
];

// deno-lint-ignore no-explicit-any
const functions = paths as unknown as Record<string, (...args: any[]) => string>;

Deno.test("paths: every key builder returns its documented key, and a valid one", () => {
  for (const [fn, args, expected] of ROWS) {
    assert(typeof functions[fn] === "function", `paths.${fn} exists`);
    const key = functions[fn](...args);
    assertEquals(key, expected, `${fn}(${args.map((a) => JSON.stringify(a)).join(", ")})`);
    assertEquals(checkKey(key), key, `${fn}: a valid storage key`);
  }
});

Deno.test("paths: every exported function has a row in this table", () => {
  // Parsers (`parse…`) read keys back; they have their own round-trip test below.
  const covered = new Set([...ROWS.map(([fn]) => fn), "parseReferrerEntry", "parseCatalogEntry"]);
  const missing = Object.entries(paths)
    .filter(([name, value]) => typeof value === "function" && !covered.has(name))
    .map(([name]) => name);
  assertEquals(missing, [], "add a row to tests/storage/paths_test.ts for");
});

Deno.test("paths: top-level prefixes", () => {
  assertEquals(paths.REPOSITORIES, "repositories");
  assertEquals(paths.UPLOADS, "_uploads");
  assertEquals(checkKey(paths.UPLOAD_STATE_KEY), "_secrets/upload-state");
  assert(paths.blobPath(D).startsWith(`${paths.BLOBS}/`));
  assert(paths.quarantinePath(D).startsWith(`${paths.QUARANTINE}/`));
});

Deno.test("paths: keys of different kinds in one repository never collide", () => {
  const keys = [
    paths.layerLinkPath("a", D),
    paths.revisionLinkPath("a", D),
    paths.referrersPath("a", D),
    paths.tagPath("a", "sha256"),
  ];
  assertEquals(new Set(keys).size, keys.length);
});

Deno.test("paths: parsers read back what the builders write, and refuse strays", () => {
  assertEquals(paths.parseReferrerEntry(paths.referrerEntry(D512)), D512);
  assertEquals(paths.parseReferrerEntry("not-a-digest"), undefined);
  for (const name of ["alpine", "org/team/app"]) {
    const entry = paths.catalogEntryPath(name).slice(`${paths.CATALOG}/`.length);
    assertEquals(paths.parseCatalogEntry(entry), name);
  }
  assertEquals(paths.parseCatalogEntry(paths.CATALOG_INDEXED), undefined);
});
