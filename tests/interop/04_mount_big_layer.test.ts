// Case 4 (and 9): copy between two repositories of one registry (cross-repository mount) and
// from one registry to another under a new tag; a 256 MiB layer goes through intact.

import {
  assert,
  assertEquals,
  dockerRef,
  getManifest,
  hashRemoteBlob,
  http,
  readBlob,
  Session,
  skipUnless,
  STORAGES,
  TARGET,
} from "./helpers.ts";
import { BIG_LAYER_BYTES, buildBigImage } from "./fixtures.ts";

const CLIENTS = ["skopeo"] as const;

for (const storage of STORAGES) {
  // distribution's inmemory driver copies a blob on every write (quadratic): 256 MiB takes many
  // minutes there. Only the development target is affected; Simple Registry gets the full size.
  const bigBytes = TARGET === "distribution" && storage === "memory"
    ? Math.min(BIG_LAYER_BYTES, 16 * 1024 * 1024)
    : BIG_LAYER_BYTES;
  const mib = bigBytes / 1024 / 1024;
  Deno.test({
    name:
      `interop 4 [${TARGET}/${storage}]: cross-repo mount and registry-to-registry copy of a ${mib} MiB layer`,
    ignore: skipUnless("interop 4", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry (${storage})`, () => s.registry(storage));
      const big = await s.step(
        `build an image with a ${mib} MiB layer`,
        () => buildBigImage(`${s.dir}/big-layout`, bigBytes),
      );
      const manifestBytes = await readBlob(big.layout, big.manifest.digest);

      await s.step(
        "skopeo copy oci:big -> registry c4/src:v1",
        () => s.skopeoCopy(`oci:${big.layout}:big`, dockerRef(reg, "c4/src:v1")),
      );

      const mark = reg.mark();
      await s.step(
        "skopeo copy registry c4/src:v1 -> c4/dst:v1 (same registry)",
        () => s.skopeoCopy(dockerRef(reg, "c4/src:v1"), dockerRef(reg, "c4/dst:v1")),
      );

      await s.step("the big layer was mounted across repositories, not uploaded again", () => {
        const reqs = reg.requestsSince(mark);
        const posts = reqs.filter((r) =>
          r.method === "POST" && r.path === "/v2/c4/dst/blobs/uploads/"
        );
        const mounted = posts.filter((r) => r.status === 201);
        assert(
          mounted.length >= 1,
          `expected a POST /v2/c4/dst/blobs/uploads/?mount=...&from=c4/src answered 201; requests were:\n` +
            reqs.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ""} -> ${r.status}`)
              .join("\n"),
        );
        const withQuery = mounted.filter((r) => r.query !== "");
        if (withQuery.length > 0) {
          assert(
            withQuery.some((r) =>
              new URLSearchParams(r.query).get("mount") === big.layer.digest &&
              new URLSearchParams(r.query).get("from") === "c4/src"
            ),
            `no 201 mount of ${big.layer.digest} from c4/src: ${JSON.stringify(withQuery)}`,
          );
        }
        // The only PUT that may complete an upload into c4/dst is the (small) config's.
        const uploads = reqs.filter((r) =>
          r.method === "PUT" && r.path.startsWith("/v2/c4/dst/blobs/uploads/")
        );
        assert(
          uploads.length <= 1,
          `expected at most one blob upload to c4/dst: ${JSON.stringify(uploads)}`,
        );
        return Promise.resolve();
      });

      await s.step("c4/dst serves the manifest and the big layer intact", async () => {
        const m = await getManifest(reg.url, "c4/dst", "v1");
        assertEquals(m.bytes, manifestBytes, "bytes of c4/dst:v1");
        const head = await http("HEAD", `${reg.url}/v2/c4/dst/blobs/${big.layer.digest}`, {
          want: [200],
        });
        assertEquals(
          Number(head.headers.get("content-length")),
          big.layer.size,
          "Content-Length of HEAD big layer",
        );
        const got = await hashRemoteBlob(reg.url, "c4/dst", big.layer.digest);
        assertEquals(
          got,
          { digest: big.layer.digest, size: big.layer.size },
          "big layer from c4/dst",
        );
      });

      const reg2 = await s.step(
        `start a second registry (${storage})`,
        () => s.registry(storage, { label: `${TARGET}/${storage} #2` }),
      );
      await s.step(
        "skopeo copy registry c4/dst:v1 -> second registry c4/copy:v2",
        () => s.skopeoCopy(dockerRef(reg, "c4/dst:v1"), dockerRef(reg2, "c4/copy:v2")),
      );

      await s.step("second registry serves the manifest and the big layer intact", async () => {
        const m = await getManifest(reg2.url, "c4/copy", "v2");
        assertEquals(m.bytes, manifestBytes, "bytes of c4/copy:v2");
        assertEquals(m.headerDigest, big.manifest.digest, "Docker-Content-Digest of c4/copy:v2");
        const got = await hashRemoteBlob(reg2.url, "c4/copy", big.layer.digest);
        assertEquals(
          got,
          { digest: big.layer.digest, size: big.layer.size },
          "big layer from the second registry",
        );
        const cfg = await hashRemoteBlob(reg2.url, "c4/copy", big.config);
        assertEquals(cfg.digest, big.config, "config from the second registry");
      });
    },
  });
}
