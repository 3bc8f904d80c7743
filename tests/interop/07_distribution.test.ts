// Case 7 (and 9): registry to registry. Debian's docker-registry (CNCF distribution 2.8, its own
// config and filesystem storage in the case's temp dir) on another loopback port; skopeo copies
// the image and the index from it into the registry under test and back: digests stay identical.

import {
  assertEquals,
  dockerRef,
  getManifest,
  hashRemoteBlob,
  type RegistryProcess,
  Session,
  skipUnless,
  STORAGES,
  TARGET,
} from "./helpers.ts";
import { buildImages, type ImageInfo } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo", "docker-registry"] as const;

for (const storage of STORAGES) {
  Deno.test({
    name:
      `interop 7 [${TARGET}/${storage}]: distribution 2.8 -> registry -> distribution, digests identical`,
    ignore: skipUnless("interop 7", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry under test (${storage})`, () => s.registry(storage));
      const dist = await s.step(
        "start docker-registry (distribution, fs)",
        () =>
          s.registry("fs", { kind: "distribution", label: "docker-registry (distribution 2.8)" }),
      );
      const images = await s.step("build images", () => buildImages(s));
      const { img, arm } = images;

      const expectImage = async (
        r: RegistryProcess,
        repo: string,
        ref: string,
        image: ImageInfo,
      ) => {
        const m = await getManifest(r.url, repo, ref);
        assertEquals(m.digest, image.manifest.digest, `digest of ${repo}:${ref} on ${r.label}`);
        assertEquals(m.bytes, image.manifestBytes, `bytes of ${repo}:${ref} on ${r.label}`);
        for (const d of [image.config, ...image.layers]) {
          assertEquals(
            (await hashRemoteBlob(r.url, repo, d)).digest,
            d,
            `blob ${d} of ${repo} on ${r.label}`,
          );
        }
      };
      const expectIndex = async (r: RegistryProcess, repo: string) => {
        const m = await getManifest(r.url, repo, "v1");
        assertEquals(m.digest, images.multi.index.digest, `digest of ${repo}:v1 on ${r.label}`);
        assertEquals(m.bytes, images.multi.indexBytes, `bytes of ${repo}:v1 on ${r.label}`);
        await expectImage(r, repo, img.manifest.digest, img);
        await expectImage(r, repo, arm.manifest.digest, arm);
      };

      await s.step("seed docker-registry: c7/img:v1 and c7/multi:v1 (--all)", async () => {
        await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(dist, "c7/img:v1"));
        await s.skopeoCopy(`oci:${images.layout}:multi`, dockerRef(dist, "c7/multi:v1"), ["--all"]);
        await expectImage(dist, "c7/img", "v1", img);
      });

      await s.step("skopeo copy docker-registry -> registry under test", async () => {
        await s.skopeoCopy(dockerRef(dist, "c7/img:v1"), dockerRef(reg, "c7/from-dist:v1"));
        await s.skopeoCopy(dockerRef(dist, "c7/multi:v1"), dockerRef(reg, "c7/multi:v1"), [
          "--all",
        ]);
      });

      await s.step("registry under test has identical manifests and blobs", async () => {
        await expectImage(reg, "c7/from-dist", "v1", img);
        await expectIndex(reg, "c7/multi");
      });

      await s.step(
        "skopeo copy registry under test -> docker-registry (new repositories)",
        async () => {
          await s.skopeoCopy(dockerRef(reg, "c7/from-dist:v1"), dockerRef(dist, "c7/back:v1"));
          await s.skopeoCopy(dockerRef(reg, "c7/multi:v1"), dockerRef(dist, "c7/multi-back:v1"), [
            "--all",
          ]);
        },
      );

      await s.step("docker-registry got back identical manifests and blobs", async () => {
        await expectImage(dist, "c7/back", "v1", img);
        await expectIndex(dist, "c7/multi-back");
        const raw = (await s.skopeo([
          "inspect",
          "--raw",
          "--tls-verify=false",
          dockerRef(dist, "c7/back:v1"),
        ]))
          .stdout;
        assertEquals(
          new TextEncoder().encode(raw),
          img.manifestBytes,
          "skopeo inspect --raw of c7/back:v1",
        );
      });
    },
  });
}
