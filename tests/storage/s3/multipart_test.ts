// The S3 driver's streamed writes (src/storage/s3/multipart.ts) against Ceph RGW: multipart
// uploads from reused part buffers, vetoed streams, UploadPartCopy assembly and server-side copies.

import { NotFoundError } from "../../../src/storage/driver.ts";
import {
  assertEquals,
  assertRejects,
  randomBytes,
  readAll,
  S3_IGNORE,
  s3Fixture,
} from "../../helpers.ts";
import { reusedChunks } from "../driver_suite.ts";

const ignore = S3_IGNORE;
const MiB = 1024 * 1024;

Deno.test({
  name: "s3 driver: appends bigger than a part stream as multipart and assemble on move",
  ignore,
  async fn() {
    await using fixture = s3Fixture({ partSize: 5 * MiB, maxBuffers: 3 });
    const { driver } = fixture;
    const data = randomBytes(13 * MiB + 123, 5);
    // 64 KiB chunks from one reused buffer, as a request body arrives.
    const chunks = (from: number, to: number) => reusedChunks(data.subarray(from, to), 64 * 1024);
    // A big segment, a small one, a big one, a tiny tail: copy, re-upload and copy paths.
    const cuts = [0, 6 * MiB, 6 * MiB + 1000, 12 * MiB, data.length];
    for (let i = 1; i < cuts.length; i++) {
      assertEquals(await driver.append("u/data", chunks(cuts[i - 1], cuts[i])), cuts[i]);
    }
    assertEquals((await driver.stat("u/data")).size, data.length);
    const range = await readAll(
      await driver.read("u/data", { start: 6 * MiB - 10, end: 12 * MiB + 5 }),
    );
    assertEquals(range, data.slice(6 * MiB - 10, 12 * MiB + 5), "a range across segments");
    await driver.move("u/data", "blobs/b");
    assertEquals(await readAll(await driver.read("blobs/b")), data);
    assertEquals(await driver.list("u"), []);
  },
});

Deno.test({
  name: "s3 driver: a streamed put bigger than a part is one object, or nothing when vetoed",
  ignore,
  async fn() {
    await using fixture = s3Fixture({ partSize: 5 * MiB, maxBuffers: 3 });
    const { driver } = fixture;
    const data = randomBytes(12 * MiB + 7, 9);
    await driver.put("blobs/p", reusedChunks(data, 64 * 1024));
    assertEquals(await readAll(await driver.read("blobs/p")), data);
    async function* vetoed() {
      yield* reusedChunks(data, 64 * 1024);
      throw new Error("digest mismatch");
    }
    await assertRejects(() => driver.put("blobs/q", vetoed()), Error, "digest mismatch");
    await assertRejects(() => driver.stat("blobs/q"), NotFoundError);
    assertEquals(await readAll(await driver.read("blobs/p")), data, "the earlier put is intact");
  },
});

Deno.test({
  name: "s3 driver: a lone appended segment moves by server-side copy",
  ignore,
  async fn() {
    await using fixture = s3Fixture({ partSize: 5 * MiB });
    const { driver } = fixture;
    const data = randomBytes(11 * MiB, 8);
    assertEquals(await driver.append("u/data", []), 0);
    assertEquals(await driver.append("u/data", [data]), data.length);
    await driver.move("u/data", "blobs/c");
    assertEquals(await driver.get("blobs/c"), data);
  },
});
