// Case 6 (and 9): `docker manifest inspect --insecure` of the image and of the index. Only the
// docker CLI is used (no engine); DOCKER_CONFIG is an empty dir of the case: --insecure alone
// lets it talk plain HTTP to 127.0.0.1, no config entry is needed.

import {
  assertEquals,
  type Descriptor,
  dockerRef,
  type Index,
  type Manifest,
  Session,
  sha256Of,
  skipUnless,
  STORAGES,
  TARGET,
  text,
} from "./helpers.ts";
import { buildImages } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo", "docker"] as const;

interface VerboseEntry {
  Ref: string;
  Descriptor: Descriptor;
  Raw: string;
  OCIManifest?: Manifest;
}

function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

for (const storage of STORAGES) {
  Deno.test({
    name:
      `interop 6 [${TARGET}/${storage}]: docker manifest inspect --insecure of the image and the index`,
    ignore: skipUnless("interop 6", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry (${storage})`, () => s.registry(storage));
      const images = await s.step("build images", () => buildImages(s));
      const { img, arm } = images;
      const name = (ref: string) => `${reg.host}/${ref}`;

      await s.step("skopeo copy img -> c6/app:v1 and --all multi -> c6/multi:v1", async () => {
        await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c6/app:v1"));
        await s.skopeoCopy(`oci:${images.layout}:multi`, dockerRef(reg, "c6/multi:v1"), ["--all"]);
      });

      await s.step("docker manifest inspect --insecure c6/app:v1", async () => {
        const out = JSON.parse(
          (await s.docker(["manifest", "inspect", "--insecure", name("c6/app:v1")])).stdout,
        );
        assertEquals(
          out,
          JSON.parse(text(img.manifestBytes)),
          "docker's view of the image manifest",
        );
      });

      await s.step(
        "docker manifest inspect --insecure -v c6/app:v1: exact bytes and digest",
        async () => {
          const out =
            (await s.docker(["manifest", "inspect", "--insecure", "-v", name("c6/app:v1")])).stdout;
          const e = JSON.parse(out) as VerboseEntry;
          assertEquals(e.Descriptor.digest, img.manifest.digest, "Descriptor.digest");
          assertEquals(e.Descriptor.size, img.manifest.size, "Descriptor.size");
          assertEquals(
            e.Descriptor.mediaType,
            "application/vnd.oci.image.manifest.v1+json",
            "Descriptor.mediaType",
          );
          assertEquals(
            e.Descriptor.platform,
            { architecture: "amd64", os: "linux" },
            "Descriptor.platform",
          );
          assertEquals(fromBase64(e.Raw), img.manifestBytes, "Raw bytes of the image manifest");
          assertEquals(
            e.OCIManifest?.layers.map((l) => l.digest),
            img.layers,
            "OCIManifest layers",
          );
        },
      );

      await s.step("docker manifest inspect --insecure c6/multi:v1 (the index)", async () => {
        const out = JSON.parse(
          (await s.docker(["manifest", "inspect", "--insecure", name("c6/multi:v1")])).stdout,
        ) as Index;
        assertEquals(
          out.mediaType,
          "application/vnd.oci.image.index.v1+json",
          "mediaType of the index",
        );
        assertEquals(
          out.manifests.map((m) => [m.digest, m.size, m.platform]),
          images.multi.children.map((m) => [m.digest, m.size, m.platform]),
          "the index's manifests as docker sees them",
        );
      });

      await s.step(
        "docker manifest inspect --insecure -v c6/multi:v1: each platform's exact manifest",
        async () => {
          const out =
            (await s.docker(["manifest", "inspect", "--insecure", "-v", name("c6/multi:v1")]))
              .stdout;
          const entries = JSON.parse(out) as VerboseEntry[];
          assertEquals(
            entries.map((e) => [e.Ref, e.Descriptor.digest, e.Descriptor.platform?.architecture]),
            [
              [`${name("c6/multi:v1")}@${img.manifest.digest}`, img.manifest.digest, "amd64"],
              [`${name("c6/multi:v1")}@${arm.manifest.digest}`, arm.manifest.digest, "arm64"],
            ],
            "entries of docker manifest inspect -v of the index",
          );
          assertEquals(
            sha256Of(fromBase64(entries[0].Raw)),
            img.manifest.digest,
            "Raw of the amd64 entry",
          );
          assertEquals(
            sha256Of(fromBase64(entries[1].Raw)),
            arm.manifest.digest,
            "Raw of the arm64 entry",
          );
        },
      );

      await s.step("docker manifest inspect of a missing tag fails", async () => {
        const r = await s.docker(["manifest", "inspect", "--insecure", name("c6/app:nope")], {
          expectFailure: true,
        });
        assertEquals(
          /no such manifest|manifest unknown/i.test(r.stderr + r.stdout),
          true,
          `docker said: ${r.stderr}`,
        );
      });
    },
  });
}
