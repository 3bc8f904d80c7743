// Case 3 (and 9): skopeo inspect (by tag, by digest, --raw, --config, --override-arch arm64),
// skopeo list-tags and skopeo delete; a deleted manifest is gone, everything else stays.

import {
  assert,
  assertEquals,
  dockerRef,
  getManifest,
  hashRemoteBlob,
  http,
  readBlob,
  type RegistryProcess,
  Session,
  skipUnless,
  STORAGES,
  TARGET,
  text,
} from "./helpers.ts";
import { buildImages, type ImageInfo } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo"] as const;

interface Inspect {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
  Labels: Record<string, string> | null;
}

for (const storage of STORAGES) {
  Deno.test({
    name: `interop 3 [${TARGET}/${storage}]: skopeo inspect, list-tags and delete`,
    ignore: skipUnless("interop 3", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry (${storage})`, () => s.registry(storage));
      const images = await s.step("build images", () => buildImages(s));
      const { img, arm } = images;
      const inspect = async (ref: string, flags: string[] = [], global: string[] = []) =>
        (await s.skopeo([
          ...global,
          "inspect",
          "--tls-verify=false",
          ...flags,
          dockerRef(reg, ref),
        ])).stdout;

      await s.step(
        "push: c3/app:v1, c3/app:v2 (img), c3/app:arm (arm), c3/other:v1, c3/multi:v1",
        async () => {
          const src = (ref: string) => `oci:${images.layout}:${ref}`;
          await s.skopeoCopy(src("img"), dockerRef(reg, "c3/app:v1"));
          await s.skopeoCopy(src("img"), dockerRef(reg, "c3/app:v2"));
          await s.skopeoCopy(src("arm"), dockerRef(reg, "c3/app:arm"));
          await s.skopeoCopy(src("img"), dockerRef(reg, "c3/other:v1"));
          await s.skopeoCopy(src("multi"), dockerRef(reg, "c3/multi:v1"), ["--all"]);
        },
      );

      await s.step("skopeo inspect by tag", async () => {
        const i = JSON.parse(await inspect("c3/app:v1")) as Inspect;
        assertEquals(i.Digest, img.manifest.digest, "Digest");
        assertEquals(i.Layers, img.layers, "Layers");
        assertEquals([i.Os, i.Architecture], ["linux", "amd64"], "platform");
        assertEquals(i.Labels?.["org.example.interop"], "amd64", "label from the config");
        assertEquals([...i.RepoTags].sort(), ["arm", "v1", "v2"], "RepoTags (from the tags list)");
      });

      await s.step("skopeo inspect by digest", async () => {
        const i = JSON.parse(await inspect(`c3/app@${img.manifest.digest}`)) as Inspect;
        assertEquals(
          [i.Digest, i.Layers],
          [img.manifest.digest, img.layers],
          "Digest and Layers by digest",
        );
        const a = JSON.parse(await inspect(`c3/app@${arm.manifest.digest}`)) as Inspect;
        assertEquals(
          [a.Digest, a.Architecture],
          [arm.manifest.digest, "arm64"],
          "arm image by digest",
        );
      });

      await s.step("skopeo inspect --raw and --config --raw give the exact bytes", async () => {
        assertEquals(
          await inspect("c3/app:v1", ["--raw"]),
          text(img.manifestBytes),
          "--raw of c3/app:v1",
        );
        assertEquals(
          await inspect(`c3/app@${img.manifest.digest}`, ["--raw"]),
          text(img.manifestBytes),
          "--raw by digest",
        );
        assertEquals(
          await inspect("c3/multi:v1", ["--raw"]),
          text(images.multi.indexBytes),
          "--raw of the index",
        );
        const config = text(await readBlob(images.layout, img.config));
        assertEquals(
          await inspect("c3/app:v1", ["--config", "--raw"]),
          config,
          "--config --raw of c3/app:v1",
        );
      });

      await s.step(
        "skopeo inspect of the index picks the platform (--override-arch arm64)",
        async () => {
          const a = JSON.parse(
            await inspect("c3/multi:v1", [], ["--override-arch", "arm64"]),
          ) as Inspect;
          assertEquals(
            [a.Architecture, a.Layers],
            ["arm64", arm.layers],
            "arm64 instance of c3/multi:v1",
          );
          const x = JSON.parse(
            await inspect("c3/multi:v1", [], ["--override-arch", "amd64"]),
          ) as Inspect;
          assertEquals(
            [x.Architecture, x.Layers],
            ["amd64", img.layers],
            "amd64 instance of c3/multi:v1",
          );
        },
      );

      await s.step("skopeo list-tags", async () => {
        const listTags = async (repo: string) =>
          JSON.parse(
            (await s.skopeo(["list-tags", "--tls-verify=false", dockerRef(reg, repo)])).stdout,
          ) as {
            Repository: string;
            Tags: string[];
          };
        const app = await listTags("c3/app");
        assertEquals(app.Repository, `${reg.host}/c3/app`, "Repository of list-tags");
        assertEquals([...app.Tags].sort(), ["arm", "v1", "v2"], "tags of c3/app");
        assertEquals((await listTags("c3/multi")).Tags, ["v1"], "tags of c3/multi");
        assertEquals((await listTags("c3/other")).Tags, ["v1"], "tags of c3/other");
      });

      await s.step(
        "skopeo delete c3/app@<img digest>",
        () =>
          s.skopeo([
            "delete",
            "--tls-verify=false",
            dockerRef(reg, `c3/app@${img.manifest.digest}`),
          ]),
      );

      await s.step("the deleted manifest is gone, by digest and by its tags", async () => {
        for (const ref of [img.manifest.digest, "v1", "v2"]) {
          const r = await http("GET", `${reg.url}/v2/c3/app/manifests/${ref}`, {
            headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
          });
          assertEquals(r.status, 404, `GET c3/app/manifests/${ref} after delete: ${text(r.body)}`);
          const h = await http("HEAD", `${reg.url}/v2/c3/app/manifests/${ref}`);
          assertEquals(h.status, 404, `HEAD c3/app/manifests/${ref} after delete`);
        }
        const failed = await s.skopeo([
          "inspect",
          "--tls-verify=false",
          "--raw",
          dockerRef(reg, "c3/app:v1"),
        ], {
          expectFailure: true,
        });
        assert(
          /manifest unknown|not found/i.test(failed.stderr),
          `skopeo's error: ${failed.stderr}`,
        );
        const tags = await http("GET", `${reg.url}/v2/c3/app/tags/list`, { want: [200] });
        assertEquals(JSON.parse(text(tags.body)).tags, ["arm"], "tags of c3/app after the delete");
      });

      await s.step("other manifests and repositories are untouched", async () => {
        await expectIntact(reg, "c3/app", "arm", arm);
        await expectIntact(reg, "c3/other", "v1", img);
        const idx = await getManifest(reg.url, "c3/multi", "v1");
        assertEquals(idx.bytes, images.multi.indexBytes, "c3/multi:v1 bytes after the delete");
        await expectIntact(reg, "c3/multi", img.manifest.digest, img);
        await expectIntact(reg, "c3/multi", arm.manifest.digest, arm);
        const i = JSON.parse(await inspect("c3/other:v1")) as Inspect;
        assertEquals(
          [i.Digest, i.RepoTags],
          [img.manifest.digest, ["v1"]],
          "skopeo inspect c3/other:v1",
        );
      });
    },
  });
}

/** The manifest is served with its exact bytes and all its blobs hash right. */
async function expectIntact(
  reg: RegistryProcess,
  repo: string,
  ref: string,
  image: ImageInfo,
): Promise<void> {
  const m = await getManifest(reg.url, repo, ref);
  assertEquals(m.bytes, image.manifestBytes, `bytes of ${repo}:${ref}`);
  for (const d of [image.config, ...image.layers]) {
    assertEquals((await hashRemoteBlob(reg.url, repo, d)).digest, d, `blob ${d} of ${repo}`);
  }
}
