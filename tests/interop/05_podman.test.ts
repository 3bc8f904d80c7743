// Case 5 (and 9): podman pull, podman tag + podman push, podman pull --platform linux/arm64 from
// the index. podman runs as root with a private vfs store in the case's temp dir, cgroupfs and
// no events (see Session.podman), and --tls-verify=false against http on 127.0.0.1.

import {
  assert,
  assertEquals,
  dockerRef,
  getManifest,
  hashRemoteBlob,
  type Manifest,
  MT,
  readJsonBlob,
  Session,
  skipUnless,
  STORAGES,
  TARGET,
  text,
} from "./helpers.ts";
import { buildImages } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo", "podman"] as const;

interface PodmanImage {
  Id: string;
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  RootFS: { Layers: string[] };
}

for (const storage of STORAGES) {
  Deno.test({
    name: `interop 5 [${TARGET}/${storage}]: podman pull, tag + push, pull --platform linux/arm64`,
    ignore: skipUnless("interop 5", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry (${storage})`, () => s.registry(storage));
      const images = await s.step("build images", () => buildImages(s));
      const { img, arm } = images;
      const name = (ref: string) => `${reg.host}/${ref}`;
      const podmanInspect = async (ref: string) =>
        (JSON.parse((await s.podman(["image", "inspect", ref])).stdout) as PodmanImage[])[0];
      const diffIds = async (config: string) =>
        (await readJsonBlob<{ rootfs: { diff_ids: string[] } }>(images.layout, config)).rootfs
          .diff_ids;

      await s.step("skopeo copy img -> c5/app:v1 and --all multi -> c5/multi:v1", async () => {
        await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c5/app:v1"));
        await s.skopeoCopy(`oci:${images.layout}:multi`, dockerRef(reg, "c5/multi:v1"), ["--all"]);
      });

      await s.step(
        "podman pull c5/app:v1",
        () =>
          s.podman([
            "pull",
            "--tls-verify=false",
            "--signature-policy",
            s.policyPath,
            name("c5/app:v1"),
          ]),
      );

      await s.step(
        "podman's image: config digest as Id, manifest digest, amd64, diff_ids",
        async () => {
          const i = await podmanInspect(name("c5/app:v1"));
          assertEquals(`sha256:${i.Id}`, img.config, "image Id is the config digest");
          assertEquals(i.Digest, img.manifest.digest, "Digest is the manifest digest");
          assert(
            i.RepoDigests.includes(`${name("c5/app")}@${img.manifest.digest}`),
            `RepoDigests: ${i.RepoDigests}`,
          );
          assertEquals([i.Os, i.Architecture], ["linux", "amd64"], "platform");
          assertEquals(
            i.RootFS.Layers,
            await diffIds(img.config),
            "layers (diff_ids) stored by podman",
          );
        },
      );

      const digestFile = `${s.dir}/pushed.digest`;
      await s.step("podman tag c5/app:v1 c5/pushed:p1 + podman push", async () => {
        await s.podman(["tag", name("c5/app:v1"), name("c5/pushed:p1")]);
        await s.podman([
          "push",
          "--tls-verify=false",
          "--signature-policy",
          s.policyPath,
          "--digestfile",
          digestFile,
          name("c5/pushed:p1"),
        ]);
      });

      await s.step(
        "the pushed image is in the registry, config intact, every blob hashes right",
        async () => {
          const pushedDigest = (await Deno.readTextFile(digestFile)).trim();
          const m = await getManifest(reg.url, "c5/pushed", "p1");
          assertEquals(
            m.digest,
            pushedDigest,
            "digest of GET c5/pushed:p1 vs podman's --digestfile",
          );
          const manifest = JSON.parse(text(m.bytes)) as Manifest;
          assertEquals(manifest.config.digest, img.config, "config of the pushed image");
          assertEquals(manifest.layers.length, 3, "layers of the pushed image");
          for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
            const got = await hashRemoteBlob(reg.url, "c5/pushed", d);
            assertEquals(got.digest, d, `sha256 of pushed blob ${d}`);
          }
          const byDigest = await getManifest(reg.url, "c5/pushed", pushedDigest);
          assertEquals(byDigest.bytes, m.bytes, "pushed manifest by digest");
        },
      );

      await s.step(
        "podman push --format v2s2: a Docker schema 2 manifest, served as such",
        async () => {
          const v2s2 = "application/vnd.docker.distribution.manifest.v2+json";
          const file = `${s.dir}/v2s2.digest`;
          await s.podman([
            "push",
            "--tls-verify=false",
            "--signature-policy",
            s.policyPath,
            "--format",
            "v2s2",
            "--digestfile",
            file,
            name("c5/pushed:p1"),
            `docker://${name("c5/docker:v2s2")}`,
          ]);
          const m = await getManifest(reg.url, "c5/docker", "v2s2", `${v2s2}, ${MT.manifest}`);
          assertEquals(
            m.digest,
            (await Deno.readTextFile(file)).trim(),
            "digest of c5/docker:v2s2 vs --digestfile",
          );
          assertEquals(m.contentType, v2s2, "Content-Type of the schema 2 manifest");
          const manifest = JSON.parse(text(m.bytes)) as Manifest;
          assertEquals(manifest.mediaType, v2s2, "mediaType field of the pushed manifest");
          for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
            assertEquals(
              (await hashRemoteBlob(reg.url, "c5/docker", d)).digest,
              d,
              `sha256 of blob ${d}`,
            );
          }
          await s.podman([
            "pull",
            "--tls-verify=false",
            "--signature-policy",
            s.policyPath,
            name("c5/docker:v2s2"),
          ]);
          const i = await podmanInspect(name("c5/docker:v2s2"));
          assertEquals(
            i.RootFS.Layers,
            await diffIds(img.config),
            "diff_ids of the v2s2 image pulled back",
          );
        },
      );

      await s.step("podman pull --platform linux/arm64 c5/multi:v1", () =>
        s.podman([
          "pull",
          "--tls-verify=false",
          "--signature-policy",
          s.policyPath,
          "--platform",
          "linux/arm64",
          name("c5/multi:v1"),
        ]));

      await s.step("podman's image from the index is the arm64 one", async () => {
        const i = await podmanInspect(name("c5/multi:v1"));
        assertEquals(`sha256:${i.Id}`, arm.config, "image Id is the arm64 config digest");
        assertEquals([i.Os, i.Architecture], ["linux", "arm64"], "platform");
        assertEquals(i.RootFS.Layers, await diffIds(arm.config), "arm64 layers (diff_ids)");
        assert(
          i.RepoDigests.includes(`${name("c5/multi")}@${arm.manifest.digest}`),
          `RepoDigests should name the arm64 manifest ${arm.manifest.digest}: ${i.RepoDigests}`,
        );
      });

      await s.step(
        "podman pull of the pushed image into a fresh store gives the same image",
        async () => {
          await s.podman(["rmi", "--all", "--force"]);
          await s.podman([
            "pull",
            "--tls-verify=false",
            "--signature-policy",
            s.policyPath,
            name("c5/pushed:p1"),
          ]);
          const i = await podmanInspect(name("c5/pushed:p1"));
          assertEquals(`sha256:${i.Id}`, img.config, "Id of the pushed image pulled back");
          assertEquals(
            i.RootFS.Layers,
            await diffIds(img.config),
            "diff_ids of the pushed image pulled back",
          );
        },
      );
    },
  });
}
