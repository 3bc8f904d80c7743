// Runs the shared StorageDriver suite against the S3 driver (Ceph RGW from scripts/ceph/start.sh),
// plus what only the S3 mapping does: append slots, plain objects over segments, ready() errors.

import { NotFoundError } from "../../../src/storage/driver.ts";
import { createS3Driver, S3Error } from "../../../src/storage/s3/driver.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  bytes,
  concat,
  S3_IGNORE,
  S3_SETTINGS,
  S3_SKIP_REASON,
  s3Fixture,
  text,
} from "../../helpers.ts";
import { driverSuite } from "../driver_suite.ts";

if (S3_IGNORE) console.log(S3_SKIP_REASON);
else driverSuite("s3", () => Promise.resolve(s3Fixture()));

const ignore = S3_IGNORE;

Deno.test({
  name: "s3 driver: a second writer cannot claim an append slot already taken",
  ignore,
  async fn() {
    await using fixture = s3Fixture();
    const { driver } = fixture;
    await driver.append("u/data", [bytes("abc")]);
    // Two appends racing from the same state: one wins the slot, the other is refused.
    const results = await Promise.allSettled([
      driver.append("u/data", [bytes("111")]),
      driver.append("u/data", [bytes("222")]),
    ]);
    const stored = text(await driver.get("u/data"));
    assert(["abc111", "abc222", "abc111222", "abc222111"].includes(stored), stored);
    for (const result of results) {
      if (result.status === "rejected") {
        assert(
          result.reason instanceof S3Error && result.reason.status === 412,
          `${result.reason}`,
        );
      }
    }
    assertEquals((await driver.stat("u/data")).size, stored.length);
    assertEquals(concat(bytes(stored)).length, stored.length);
  },
});

Deno.test({
  name: "s3 driver: ready() fails with one clear line for a wrong bucket or wrong keys",
  ignore,
  async fn() {
    await using _ = s3Fixture(); // under CI=true without S3: fails here, with the reason
    const wrongBucket = createS3Driver({ ...S3_SETTINGS!, bucket: `missing-${Date.now()}` });
    const error = await assertRejects(() => wrongBucket.ready(), S3Error);
    assert(/NoSuchBucket/.test(error.message) && !error.message.includes("\n"), error.message);
    const wrongKey = createS3Driver({ ...S3_SETTINGS!, secretAccessKey: "wrong" });
    const denied = await assertRejects(() => wrongKey.ready(), S3Error);
    assert(
      /SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId/.test(denied.message),
      denied.message,
    );
    const unreachable = createS3Driver({ ...S3_SETTINGS!, endpoint: "http://127.0.0.1:1" });
    await assertRejects(() => unreachable.ready(), S3Error);
  },
});

Deno.test({
  name: "s3 driver: a put over an appended object wins, and appends continue from it",
  ignore,
  async fn() {
    await using fixture = s3Fixture();
    const { driver } = fixture;
    await driver.append("k", [bytes("old-"), bytes("segments")]);
    await driver.put("k", bytes("X"));
    assertEquals(text(await driver.get("k")), "X");
    assertEquals(await driver.append("k", [bytes("Y")]), 2);
    assertEquals(text(await driver.get("k")), "XY");
    await driver.move("k", "moved");
    assertEquals(text(await driver.get("moved")), "XY");
    await assertRejects(() => driver.stat("k"), NotFoundError);
    assertEquals(await driver.list("k"), []);
  },
});
