// Case 11: immutable tags and quotas as skopeo and podman meet them: the same image again is fine,
// a moved release tag and a push past a quota fail, and what the clients print says why.

import { dockerRef, readBlob, Session, skipUnless, TARGET } from "./helpers.ts";
import { buildImages } from "./fixtures.ts";
import { assert } from "./helpers.ts";

const CLIENTS = ["umoci", "skopeo", "podman"] as const;

/** The line a client ends on when it fails: what its user reads. */
const lastLine = (stderr: string) => stderr.trim().split("\n").pop() ?? "";

Deno.test({
  name: `interop 11 [${TARGET}/fs]: immutable tags and quotas through skopeo and podman`,
  ignore: TARGET !== "simple" || skipUnless("interop 11", CLIENTS),
  fn: async (t) => {
    await using s = await Session.open(t, CLIENTS);
    const images = await s.step("build images", () => buildImages(s));
    const { img } = images;
    let imgBytes = img.manifest.size;
    for (const blob of [img.config, ...img.layers]) {
      imgBytes += (await readBlob(images.layout, blob)).length;
    }
    const config = `${s.dir}/registry.yaml`;
    await Deno.writeTextFile(
      config,
      `immutable-tags:\n  - repositories: c11/**\n    tags: ^v\n` +
        `quotas:\n  - repositories: c11/q/**\n    max-bytes: ${imgBytes + 64}\n`,
    );
    const reg = await s.step(
      "start registry with the policies",
      () => s.registry("fs", { args: ["--config", config] }),
    );
    const seen: string[] = [];
    const pull = (ref: string, platform = "linux/amd64") =>
      s.podman([
        "pull",
        "--tls-verify=false",
        "--signature-policy",
        s.policyPath,
        "--platform",
        platform,
        `${reg.host}/${ref}`,
      ]);
    const podmanPush = (local: string, ref: string) =>
      s.podman([
        "push",
        "--tls-verify=false",
        "--signature-policy",
        s.policyPath,
        local,
        `${reg.host}/${ref}`,
      ], { expectFailure: true });
    const copyFails = (source: string, ref: string) =>
      s.skopeo(
        ["copy", "--dest-tls-verify=false", `oci:${images.layout}:${source}`, dockerRef(reg, ref)],
        { expectFailure: true },
      );

    await s.step("skopeo copy img -> c11/app:v1, twice (the same digest is accepted)", async () => {
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c11/app:v1"));
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c11/app:v1"));
      await s.skopeoCopy(`oci:${images.layout}:arm`, dockerRef(reg, "c11/arm:latest"));
    });

    await s.step("skopeo copy arm -> c11/app:v1 fails: the tag is immutable", async () => {
      const line = lastLine((await copyFails("arm", "c11/app:v1")).stderr);
      seen.push(`skopeo: ${line}`);
      assert(
        line.includes("tag v1 already exists in c11/app and is immutable"),
        `skopeo says why: ${line}`,
      );
    });

    await s.step("podman push arm -> c11/app:v1 fails: the tag is immutable", async () => {
      await pull("c11/arm:latest", "linux/arm64");
      const line = lastLine((await podmanPush(`${reg.host}/c11/arm:latest`, "c11/app:v1")).stderr);
      seen.push(`podman: ${line}`);
      assert(line.includes("is immutable (immutable-tags rule 1)"), `podman says why: ${line}`);
    });

    await s.step("skopeo copy fills the quota, then a second image is refused", async () => {
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c11/q/one:latest"));
      const line = lastLine((await copyFails("arm", "c11/q/two:latest")).stderr);
      seen.push(`skopeo: ${line}`);
      assert(line.includes("quota exceeded for c11/q/**"), `skopeo says why: ${line}`);
    });

    await s.step("podman push past the quota is refused", async () => {
      const line = lastLine(
        (await podmanPush(`${reg.host}/c11/arm:latest`, "c11/q/three:latest")).stderr,
      );
      seen.push(`podman: ${line}`);
      assert(line.includes("quota exceeded for c11/q/**"), `podman says why: ${line}`);
    });
    console.log(seen.join("\n"));
  },
});
