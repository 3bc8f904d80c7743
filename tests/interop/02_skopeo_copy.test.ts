// Case 2 (and 9): skopeo copies the umoci image and the index (--all) into the registry and back
// out to a new OCI layout; manifests and every blob keep their digests and bytes.

import {
  assertEquals,
  dockerRef,
  getManifest,
  hashRemoteBlob,
  layoutRef,
  MT,
  reachableDigests,
  readBlob,
  Session,
  sha256File,
  skipUnless,
  STORAGES,
  TARGET,
  verifyLayoutBlobs,
} from "./helpers.ts";
import { buildImages } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo"] as const;

for (const storage of STORAGES) {
  Deno.test({
    name:
      `interop 2 [${TARGET}/${storage}]: skopeo copy image and index in and out, digests and blobs match`,
    ignore: skipUnless("interop 2", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry (${storage})`, () => s.registry(storage));
      const images = await s.step("build images", () => buildImages(s));

      await s.step(
        "skopeo copy oci:img -> registry c2/app:v1",
        () => s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c2/app:v1")),
      );
      await s.step(
        "skopeo copy --all oci:multi -> registry c2/multi:v1",
        () => s.skopeoCopy(`oci:${images.layout}:multi`, dockerRef(reg, "c2/multi:v1"), ["--all"]),
      );

      await s.step("registry serves the exact manifests and blobs", async () => {
        const img = await getManifest(reg.url, "c2/app", "v1");
        assertEquals(img.digest, images.img.manifest.digest, "digest of GET c2/app:v1");
        assertEquals(
          img.headerDigest,
          images.img.manifest.digest,
          "Docker-Content-Digest of c2/app:v1",
        );
        assertEquals(img.contentType, MT.manifest, "Content-Type of c2/app:v1");
        const idx = await getManifest(reg.url, "c2/multi", "v1");
        assertEquals(idx.digest, images.multi.index.digest, "digest of GET c2/multi:v1");
        assertEquals(idx.contentType, MT.index, "Content-Type of c2/multi:v1");
        for (const child of [images.img, images.arm]) {
          const m = await getManifest(reg.url, "c2/multi", child.manifest.digest);
          assertEquals(m.digest, child.manifest.digest, `child ${child.ref} of c2/multi by digest`);
        }
        for (
          const [repo, digests] of [
            ["c2/app", [images.img.config, ...images.img.layers]],
            ["c2/multi", [
              images.img.config,
              ...images.img.layers,
              images.arm.config,
              ...images.arm.layers,
            ]],
          ] as const
        ) {
          for (const d of digests) {
            const got = await hashRemoteBlob(reg.url, repo, d);
            assertEquals(got.digest, d, `sha256 of blob ${d} served from ${repo}`);
            assertEquals(
              got.size,
              (await readBlob(images.layout, d)).length,
              `size of blob ${d} from ${repo}`,
            );
          }
        }
      });

      const out = `${s.dir}/out-layout`;
      await s.step(
        "skopeo copy registry c2/app:v1 -> new oci layout",
        () => s.skopeoCopy(dockerRef(reg, "c2/app:v1"), `oci:${out}:img`),
      );
      await s.step(
        "skopeo copy --all registry c2/multi:v1 -> new oci layout",
        () => s.skopeoCopy(dockerRef(reg, "c2/multi:v1"), `oci:${out}:multi`, ["--all"]),
      );

      await s.step(
        "copied-out layout: same manifest digests, every blob's sha256 matches",
        async () => {
          await verifyLayoutBlobs(out);
          for (
            const [ref, want] of [["img", images.img.manifest], [
              "multi",
              images.multi.index,
            ]] as const
          ) {
            const got = await layoutRef(out, ref);
            assertEquals(
              [got.digest, got.mediaType],
              [want.digest, want.mediaType],
              `copied-out ${ref}`,
            );
            const expected = await reachableDigests(images.layout, want);
            assertEquals(
              await reachableDigests(out, got),
              expected,
              `digests reachable from ${ref}`,
            );
            for (const d of expected) {
              assertEquals(
                await sha256File(`${out}/blobs/sha256/${d.slice(7)}`),
                d,
                `sha256 of copied-out ${d}`,
              );
            }
          }
        },
      );
    },
  });
}
