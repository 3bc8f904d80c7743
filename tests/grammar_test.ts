// Unit tests of src/grammar.ts: names, tags, digests and references against the spec's grammar.
// Anchored matching, the 255-character name cap, sha256/sha512 lengths and lowercase hex.

import {
  isName,
  isTag,
  looksLikeDigest,
  MAX_NAME_LENGTH,
  parseDigest,
  parseReference,
  requireDigest,
  requireName,
} from "../src/grammar.ts";
import { RegistryError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "./helpers.ts";

const SHA256 = "sha256:" + "a1".repeat(32);
const SHA512 = "sha512:" + "0f".repeat(64);

Deno.test("grammar: valid repository names", () => {
  for (
    const name of [
      "a",
      "library/alpine",
      "a/b/c/d/e",
      "my-app",
      "my--app",
      "my_app",
      "my__app",
      "my.app",
      "0",
      "a1/b2.c3-d4_e5",
      "x".repeat(MAX_NAME_LENGTH),
      ("ab/".repeat(85)).slice(0, 254) + "b", // 255 characters, many components
    ]
  ) {
    assert(isName(name), `${JSON.stringify(name)} (${name.length}) is a name`);
    assertEquals(requireName(name), name);
  }
});

Deno.test("grammar: invalid repository names", () => {
  for (
    const name of [
      "",
      "A",
      "Library/alpine",
      "../etc",
      "a/../b",
      "..",
      ".",
      "a/./b",
      "/a",
      "a/",
      "a//b",
      "a..b",
      "a___b",
      "-a",
      "a-",
      "_a",
      "a/_layers",
      ".a",
      "a.",
      "a b",
      "a%2fb",
      "a\nb",
      "a:b",
      "a@b",
      "ünicode",
      "x".repeat(MAX_NAME_LENGTH + 1),
      "a\u0000",
    ]
  ) {
    assert(!isName(name), `${JSON.stringify(name)} is not a name`);
    const error = assertThrows(() => requireName(name), RegistryError) as RegistryError;
    assertEquals(error.code, "NAME_INVALID");
    assertEquals(error.status, 400);
  }
});

Deno.test("grammar: tags", () => {
  for (const tag of ["latest", "v1.0.0", "_", "_x", "A", "a-b_c.d", "1", "x".repeat(128)]) {
    assert(isTag(tag), `${JSON.stringify(tag)} is a tag`);
  }
  for (
    const tag of ["", ".hidden", "-x", "x".repeat(129), "a/b", "a:b", "..", "a b", "tag\n", "é"]
  ) {
    assert(!isTag(tag), `${JSON.stringify(tag)} is not a tag`);
  }
});

Deno.test("grammar: digests this registry verifies", () => {
  assertEquals(parseDigest(SHA256), {
    algorithm: "sha256",
    encoded: "a1".repeat(32),
    value: SHA256,
  });
  assertEquals(parseDigest(SHA512)?.algorithm, "sha512");
  assertEquals(parseDigest(SHA512)?.encoded.length, 128);
  assertEquals(requireDigest(SHA256).value, SHA256);
});

Deno.test("grammar: bad or unsupported digests", () => {
  for (
    const value of [
      "",
      "sha256",
      "sha256:",
      ":abc",
      "sha256:" + "a".repeat(63),
      "sha256:" + "a".repeat(65),
      "sha256:" + "A".repeat(64), // uppercase hex
      "sha256:" + "g".repeat(64), // not hex
      "sha256:" + "a".repeat(63) + "=",
      "sha512:" + "a".repeat(64), // sha256 length under sha512
      "SHA256:" + "a".repeat(64),
      "md5:" + "a".repeat(32),
      "sha384:" + "a".repeat(96),
      "sha256:../" + "a".repeat(61),
      "sha256:" + "a".repeat(64) + "\n",
      " sha256:" + "a".repeat(64),
      "toString:abc",
      "__proto__:" + "a".repeat(64),
    ]
  ) {
    assertEquals(parseDigest(value), undefined, JSON.stringify(value));
    const error = assertThrows(() => requireDigest(value), RegistryError) as RegistryError;
    assertEquals(error.code, "DIGEST_INVALID");
  }
  assertEquals((assertThrows(() => requireDigest(null)) as RegistryError).code, "DIGEST_INVALID");
});

Deno.test("grammar: a reference is a tag or a digest, nothing else", () => {
  assertEquals(parseReference("latest"), { tag: "latest" });
  assertEquals(parseReference("x".repeat(128)), { tag: "x".repeat(128) });
  assertEquals(parseReference(SHA256), { digest: parseDigest(SHA256)! });
  assert(looksLikeDigest(SHA256));
  assert(!looksLikeDigest("latest"));
  const cases: [string, string][] = [
    ["x".repeat(129), "TAG_INVALID"],
    ["..", "TAG_INVALID"],
    ["", "TAG_INVALID"],
    ["-bad", "TAG_INVALID"],
    ["sha256:totallywrong", "DIGEST_INVALID"],
    ["a:b", "DIGEST_INVALID"],
  ];
  for (const [reference, code] of cases) {
    const error = assertThrows(() => parseReference(reference), RegistryError) as RegistryError;
    assertEquals(error.code, code, JSON.stringify(reference));
    assertEquals(error.status, 400);
  }
});
