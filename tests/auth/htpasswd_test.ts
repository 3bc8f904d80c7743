// Unit tests of src/auth/htpasswd.ts: parsing (bcrypt only, line numbers), verify, reload, cache.

import bcrypt from "bcryptjs";
import { htpasswdLine } from "./fixtures.ts";
import { loadHtpasswd, parseHtpasswd } from "../../src/auth/htpasswd.ts";
import { assert, assertEquals, assertRejects, assertThrows, tempDir } from "../helpers.ts";

Deno.test("htpasswd: parses bcrypt entries, skips blanks and comments", () => {
  const alice = htpasswdLine("alice", "a");
  const bob = htpasswdLine("bob", "b").replace("$2y$", "$2b$");
  const entries = parseHtpasswd(`# users\n${alice}\n\n${bob}\r\n`);
  assertEquals([...entries.keys()], ["alice", "bob"]);
  assertEquals(entries.get("alice"), alice.split(":")[1]);
});

Deno.test("htpasswd: a non-bcrypt entry is refused, naming the line and user", () => {
  const alice = htpasswdLine("alice", "a");
  assertThrows(
    () => parseHtpasswd(`${alice}\ncarol:$apr1$abc$0123456789abcdefghijkl\n`),
    Error,
    `line 2: the entry for "carol" is not a bcrypt hash`,
  );
  assertThrows(() => parseHtpasswd("dave:{SHA}abcdef="), Error, "line 1");
  assertThrows(() => parseHtpasswd("just-a-name"), Error, "line 1: expected user:bcrypt-hash");
  assertThrows(() => parseHtpasswd(`${alice}\n${alice}`), Error, `"alice" is listed twice`);
});

Deno.test("htpasswd: verify, unknown users, reload on change, bad reload keeps entries", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(path, htpasswdLine("alice", "one") + "\n");
  let clock = 1_000_000;
  const store = await loadHtpasswd(path, { now: () => clock });
  assert(await store.verify("alice", "one"));
  assert(await store.verify("alice", "one"), "cached");
  assert(!await store.verify("alice", "two"));
  assert(!await store.verify("nobody", "one"));
  assert(await store.has("alice"));

  await Deno.writeTextFile(path, htpasswdLine("alice", "two") + "\n" + htpasswdLine("bob", "b"));
  assert(await store.verify("alice", "one"), "not re-stat'ed within a second");
  clock += 1500;
  assert(!await store.verify("alice", "one"), "old password gone, cache dropped");
  assert(await store.verify("alice", "two"));
  assert(await store.verify("bob", "b"));

  await Deno.writeTextFile(path, "broken line\n");
  clock += 1500;
  assert(await store.verify("bob", "b"), "a bad file at run time keeps the old entries");
});

Deno.test("htpasswd: a bad file at start is an error naming the file and line", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(path, "alice:plain\n");
  await assertRejects(() => loadHtpasswd(path), Error, `${path}: line 1`);
});

Deno.test("htpasswd: an unknown user costs a bcrypt too, against the file's costliest hash", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/htpasswd`;
  const cheap = bcrypt.hashSync("pw", 4);
  const costly = bcrypt.hashSync("pw", 6);
  await Deno.writeTextFile(path, `alice:${cheap}\nbob:${costly}\n`);
  const compared: string[] = [];
  const compare = (password: string, hash: string) => {
    compared.push(hash);
    return bcrypt.compare(password, hash);
  };
  const store = await loadHtpasswd(path, { compare });
  assert(!await store.verify("nobody", "pw"), "an unknown user never passes");
  assertEquals(compared, [costly]);
});

Deno.test("htpasswd: 20 checks of the same good credentials pay one bcrypt", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(path, `alice:${bcrypt.hashSync("pw", 8)}\n`);
  let compares = 0;
  const compare = (password: string, hash: string) => {
    compares++;
    return bcrypt.compare(password, hash);
  };
  const store = await loadHtpasswd(path, { compare });
  for (let i = 0; i < 20; i++) assert(await store.verify("alice", "pw"));
  assertEquals(compares, 1);
  assert(!await store.verify("alice", "pW"), "the cache is keyed by the password too");
  assertEquals(compares, 2);
});
