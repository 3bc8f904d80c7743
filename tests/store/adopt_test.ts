// Unit tests of the store's `manifests.adopt` (src/store/manifests.ts): a manifest fetched from
// elsewhere is kept byte for byte, with its tag, though what it references is not here yet.

import { parseDigest } from "../../src/grammar.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { createStore } from "../../src/store/store.ts";
import { RegistryError } from "../../src/errors.ts";
import {
  assertEquals,
  assertRejects,
  buildImage,
  descriptorOf,
  digest,
  imageIndex,
  jsonBytes,
  OCI_INDEX,
  randomBytes,
} from "../helpers.ts";

Deno.test("adopt: an image manifest whose blobs are absent is kept, tag and bytes", async () => {
  const store = createStore({ driver: createMemoryDriver() });
  const image = buildImage([randomBytes(100, 1)], 1);
  // A PUT refuses it: its blobs are not in the repository.
  const refused = await assertRejects(
    () => store.manifests.put("cache/app", { tag: "v1" }, image.manifest, null),
    RegistryError,
  );
  assertEquals((refused as RegistryError).code, "MANIFEST_BLOB_UNKNOWN");
  const adopted = await store.manifests.adopt("cache/app", { tag: "v1" }, image.manifest, null);
  assertEquals(adopted.digest.value, image.digest);
  assertEquals(adopted.bytes, image.manifest);
  const got = await store.manifests.get("cache/app", { tag: "v1" });
  assertEquals(got?.bytes, image.manifest);
  assertEquals(got?.mediaType, image.descriptor.mediaType);
  assertEquals((await store.tags("cache/app", { n: 10 })).items, ["v1"]);
});

Deno.test("adopt: an index whose children are absent; by digest, checked against it", async () => {
  const store = createStore({ driver: createMemoryDriver() });
  const child = buildImage([randomBytes(10, 2)], 2);
  const index = jsonBytes(imageIndex([descriptorOf(child.descriptor.mediaType, child.manifest)]));
  const reference = { digest: parseDigest(digest(index))! };
  const adopted = await store.manifests.adopt("cache/multi", reference, index, OCI_INDEX);
  assertEquals(adopted.mediaType, OCI_INDEX);
  assertEquals((await store.manifests.get("cache/multi", reference))?.bytes, index);
  const wrong = { digest: parseDigest(child.digest)! };
  const error = await assertRejects(
    () => store.manifests.adopt("cache/multi", wrong, index, OCI_INDEX),
    RegistryError,
  );
  assertEquals((error as RegistryError).code, "DIGEST_INVALID");
});

Deno.test("adopt: what is not a manifest is MANIFEST_INVALID, and nothing is kept", async () => {
  const driver = createMemoryDriver();
  const store = createStore({ driver });
  const error = await assertRejects(
    () => store.manifests.adopt("cache/x", { tag: "v1" }, jsonBytes({ schemaVersion: 1 }), null),
    RegistryError,
  );
  assertEquals((error as RegistryError).code, "MANIFEST_INVALID");
  assertEquals(await driver.list("repositories"), []);
});
