// Case 12: skopeo and podman pull through --s3-redirect: every blob GET answers 307 to a presigned
// URL of the bucket (Ceph RGW here), the clients follow it and verify what they get.

import {
  assert,
  assertEquals,
  dockerRef,
  Session,
  skipUnless,
  STORAGES,
  TARGET,
} from "./helpers.ts";
import { buildImages } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo", "podman"] as const;

Deno.test({
  name: `interop 12 [${TARGET}/s3]: skopeo copy and podman pull through --s3-redirect`,
  ignore: skipUnless("interop 12", CLIENTS) || TARGET !== "simple" || !STORAGES.includes("s3"),
  fn: async (t) => {
    await using s = await Session.open(t, CLIENTS);
    const reg = await s.step(
      "start registry (s3, --s3-redirect --s3-redirect-min 1)",
      () => s.registry("s3", { args: ["--s3-redirect", "--s3-redirect-min", "1"] }),
    );
    const images = await s.step("build images", () => buildImages(s));
    const { img } = images;
    await s.step("skopeo copy img -> c12/app:v1", async () => {
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c12/app:v1"));
    });
    const redirects = (mark: number) =>
      reg.requestsSince(mark).filter((r) => r.path.includes("/blobs/sha256:") && r.status === 307);

    let mark = reg.mark();
    await s.step("skopeo copy c12/app:v1 -> an OCI layout, every blob through a 307", async () => {
      const out = `${s.dir}/pulled`;
      await s.skopeoCopy(dockerRef(reg, "c12/app:v1"), `oci:${out}:v1`);
      const index = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
      assertEquals(index.manifests[0].digest, img.manifest.digest, "the manifest pulled");
      const sent = redirects(mark);
      assert(sent.length >= 2, `config and layers redirected: ${JSON.stringify(sent)}`);
      const served = reg.requestsSince(mark).filter((r) =>
        r.path.includes("/blobs/") && r.status === 200
      );
      assertEquals(served, [], "no blob bytes went through the registry");
    });

    mark = reg.mark();
    await s.step("podman pull c12/app:v1 through the 307s", async () => {
      const ref = `${reg.host}/c12/app:v1`;
      await s.podman(["pull", "--tls-verify=false", "--signature-policy", s.policyPath, ref]);
      const [image] = JSON.parse((await s.podman(["image", "inspect", ref])).stdout);
      assertEquals(`sha256:${image.Id}`, img.config, "image Id is the config digest");
      assertEquals(image.Digest, img.manifest.digest, "Digest is the manifest digest");
      assert(redirects(mark).length >= 2, "podman followed redirects");
    });
  },
});
