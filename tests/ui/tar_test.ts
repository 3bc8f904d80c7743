// Unit tests of src/ui/tar.ts: entries of ustar and pax archives streamed in any chunking, contents
// skipped, a cut archive and a blob that is not tar told apart from the end of an archive.

import { tarEntries, TarError } from "../../src/ui/tar.ts";
import { assertEquals, assertRejects } from "../helpers.ts";
import { makeTar } from "./fixtures.ts";

async function entries(data: Uint8Array, chunk = data.length) {
  async function* chunks() {
    for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
  }
  const out = [];
  for await (const entry of tarEntries(chunks())) out.push(entry);
  return out;
}

const ARCHIVE = makeTar([
  { path: "etc", type: "dir" },
  { path: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n".repeat(40), mode: 0o600 },
  { path: "bin/sh", type: "symlink", link: "busybox" },
  { path: `very/${"long/".repeat(30)}name.txt`, content: "x" },
  { path: "usr/.wh.old", content: "" },
]);

Deno.test("tar: entries with types, sizes, modes and link targets, whatever the chunking", async () => {
  for (const chunk of [ARCHIVE.length, 512, 100, 7, 1]) {
    const list = await entries(ARCHIVE, chunk);
    assertEquals(list.map((e) => [e.path, e.type, e.size]), [
      ["etc", "dir", 0],
      ["etc/passwd", "file", 26 * 40],
      ["bin/sh", "symlink", 0],
      [`very/${"long/".repeat(30)}name.txt`, "file", 1],
      ["usr/.wh.old", "file", 0],
    ], `chunks of ${chunk}`);
    assertEquals(list[1].mode, 0o600);
    assertEquals(list[2].link, "busybox");
  }
});

Deno.test("tar: a blob that is not tar, and an archive cut inside an entry, are TarErrors", async () => {
  const text = new TextEncoder().encode("hello world\n".repeat(100));
  await assertRejects(() => entries(text), TarError, "not a tar archive");
  await assertRejects(() => entries(ARCHIVE.subarray(0, 1200)), TarError, "ends inside");
  await assertRejects(() => entries(new Uint8Array()), TarError, "empty");
  // The end-of-archive blocks may be missing: the stream's end between entries is the end.
  assertEquals((await entries(ARCHIVE.subarray(0, 512))).length, 1);
});
