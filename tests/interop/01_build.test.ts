// Case 1: a 3-layer OCI image built with umoci and a 2-platform image index (amd64 + arm64)
// written by hand, checked in their OCI layout with umoci and skopeo. No registry involved.

import {
  assert,
  assertEquals,
  type Index,
  layoutRef,
  type Manifest,
  MT,
  readJsonBlob,
  Session,
  skipUnless,
  verifyLayoutBlobs,
} from "./helpers.ts";
import { buildImages } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo"] as const;

Deno.test({
  name: "interop 1: umoci builds a 3-layer image; a hand-written index holds amd64 + arm64",
  ignore: skipUnless("interop 1", CLIENTS, { registry: false }),
  // No registry here, so no need for one of the target kind either.
  fn: async (t) => {
    await using s = await Session.open(t, CLIENTS, { registry: false });
    const images = await s.step(
      "build images with umoci and write the index",
      () => buildImages(s),
    );
    const { layout } = images;

    await s.step("layout: every blob hashes to its name, refs img/arm/multi exist", async () => {
      const n = await verifyLayoutBlobs(layout);
      assert(n >= 2 + 3 + 2 + 2 + 1, `expected at least 10 blobs in the layout, found ${n}`);
      assertEquals(
        (await layoutRef(layout, "img")).mediaType,
        MT.manifest,
        "img is an image manifest",
      );
      assertEquals(
        (await layoutRef(layout, "arm")).mediaType,
        MT.manifest,
        "arm is an image manifest",
      );
      assertEquals(
        (await layoutRef(layout, "multi")).mediaType,
        MT.index,
        "multi is an image index",
      );
    });

    await s.step("img: 3 gzip layers, linux/amd64 config", async () => {
      const m = await readJsonBlob<Manifest>(layout, images.img.manifest.digest);
      assertEquals(m.layers.length, 3, "layers of img");
      for (const l of m.layers) assertEquals(l.mediaType, MT.layerGzip, "layer media type");
      assertEquals(m.config.mediaType, MT.config, "config media type");
      const cfg = await readJsonBlob<
        { architecture: string; os: string; rootfs: { diff_ids: string[] } }
      >(
        layout,
        m.config.digest,
      );
      assertEquals([cfg.os, cfg.architecture], ["linux", "amd64"], "img platform");
      assertEquals(cfg.rootfs.diff_ids.length, 3, "diff_ids of img");
    });

    await s.step("multi: index of amd64 img + arm64 arm", async () => {
      const idx = await readJsonBlob<Index>(layout, images.multi.index.digest);
      assertEquals(idx.mediaType, MT.index, "index mediaType field");
      assertEquals(
        idx.manifests.map((d) => [d.digest, d.platform?.architecture, d.platform?.os]),
        [[images.img.manifest.digest, "amd64", "linux"], [
          images.arm.manifest.digest,
          "arm64",
          "linux",
        ]],
        "index entries",
      );
      const armCfg = await readJsonBlob<{ architecture: string }>(layout, images.arm.config);
      assertEquals(armCfg.architecture, "arm64", "arm config architecture");
    });

    await s.step("umoci unpack img: the three layers' files are there", async () => {
      const bundle = `${s.dir}/bundle`;
      await s.umoci(["unpack", "--rootless", "--image", `${layout}:img`, bundle]);
      const rootfs = `${bundle}/rootfs`;
      assert(
        (await Deno.readTextFile(`${rootfs}/hello.txt`)).startsWith("hello from layer one"),
        "hello.txt",
      );
      assert(
        (await Deno.readTextFile(`${rootfs}/etc/app/app.conf`)).startsWith("layer = two"),
        "app.conf",
      );
      assertEquals((await Deno.stat(`${rootfs}/opt/three.bin`)).size, 10_036, "size of three.bin");
    });

    await s.step("skopeo inspect oci: agrees on digests and platforms", async () => {
      const img = JSON.parse(
        (await s.skopeo(["inspect", `oci:${layout}:img`])).stdout,
      ) as { Digest: string; Layers: string[]; Architecture: string };
      assertEquals(img.Digest, images.img.manifest.digest, "skopeo's digest of img");
      assertEquals(img.Layers, images.img.layers, "skopeo's layers of img");
      assertEquals(img.Architecture, "amd64", "skopeo's architecture of img");
      const raw = (await s.skopeo(["inspect", "--raw", `oci:${layout}:multi`])).stdout;
      assertEquals(
        raw,
        new TextDecoder().decode(images.multi.indexBytes),
        "skopeo inspect --raw of multi",
      );
      const arm = JSON.parse(
        (await s.skopeo(["--override-arch", "arm64", "inspect", `oci:${layout}:multi`])).stdout,
      ) as { Layers: string[]; Architecture: string };
      assertEquals(
        [arm.Architecture, arm.Layers],
        ["arm64", images.arm.layers],
        "arm64 pick from multi",
      );
    });
  },
});
