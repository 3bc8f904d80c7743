// Case 8 (and 9): artifacts with a `subject`, pushed with plain HTTP from the test (blobs by
// POST + PUT, the empty config `{}`, manifests with artifactType and subject), show up in
// GET /v2/<name>/referrers/<digest>; skopeo inspect --raw returns their exact bytes.
// distribution 2.8 (the development target) has no referrers API: those steps are left out there.

import {
  assert,
  assertEquals,
  describeHttp,
  type Descriptor,
  dockerRef,
  getManifest,
  http,
  type Index,
  MT,
  pushBlob,
  Session,
  sha256Of,
  skipUnless,
  STORAGES,
  TARGET,
  TARGET_HAS_REFERRERS,
  text,
} from "./helpers.ts";
import { buildImages } from "./fixtures.ts";

const CLIENTS = ["umoci", "skopeo"] as const;
const SBOM = "application/vnd.example.sbom.v1+json";
const SIG = "application/vnd.example.signature.v1";

for (const storage of STORAGES) {
  Deno.test({
    name:
      `interop 8 [${TARGET}/${storage}]: artifacts with a subject, referrers API, skopeo inspect --raw${
        TARGET_HAS_REFERRERS ? "" : " (referrers API not checked: distribution 2.8 lacks it)"
      }`,
    ignore: skipUnless("interop 8", CLIENTS),
    fn: async (t) => {
      await using s = await Session.open(t, CLIENTS);
      const reg = await s.step(`start registry (${storage})`, () => s.registry(storage));
      const images = await s.step("build images", () => buildImages(s));
      const { img } = images;
      const subject: Descriptor = {
        mediaType: MT.manifest,
        digest: img.manifest.digest,
        size: img.manifest.size,
      };

      await s.step(
        "skopeo copy img -> c8/app:v1 (the subject)",
        () => s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(reg, "c8/app:v1")),
      );

      const pushArtifact = async (
        artifactType: string,
        layerMediaType: string,
        payload: string,
        kind: string,
      ) => {
        const empty = await pushBlob(reg.url, "c8/app", "{}");
        assertEquals(empty.digest, sha256Of("{}"), "digest of the empty config");
        const layer = await pushBlob(reg.url, "c8/app", payload);
        const manifest = {
          schemaVersion: 2,
          mediaType: MT.manifest,
          artifactType,
          config: { mediaType: MT.empty, digest: empty.digest, size: 2, data: "e30=" },
          layers: [{ mediaType: layerMediaType, digest: layer.digest, size: layer.size }],
          subject,
          annotations: {
            "org.opencontainers.image.created": "2026-01-02T03:04:05Z",
            "org.example.kind": kind,
          },
        };
        // Indented on purpose: the registry must keep these exact bytes.
        const bytes = new TextEncoder().encode(JSON.stringify(manifest, null, 3) + "\n");
        const digest = sha256Of(bytes);
        const url = `${reg.url}/v2/c8/app/manifests/${digest}`;
        const r = await http("PUT", url, {
          headers: { "content-type": MT.manifest },
          body: bytes,
          want: [201],
        });
        assertEquals(
          r.headers.get("docker-content-digest"),
          digest,
          `Docker-Content-Digest of PUT ${kind}`,
        );
        if (TARGET_HAS_REFERRERS) {
          assertEquals(
            r.headers.get("oci-subject"),
            img.manifest.digest,
            `OCI-Subject of PUT ${kind}:\n${describeHttp("PUT", url, r)}`,
          );
        }
        return { bytes, digest, size: bytes.length, artifactType, kind };
      };

      const sbom = await s.step(
        "push an SBOM artifact (empty config, subject = img) by plain HTTP",
        () =>
          pushArtifact(
            SBOM,
            SBOM,
            JSON.stringify({ sbom: "for interop", packages: ["a", "b"] }),
            "sbom",
          ),
      );
      const sig = await s.step(
        "push a signature artifact (same subject) by plain HTTP",
        () =>
          pushArtifact(SIG, "application/octet-stream", "not really a signature\n", "signature"),
      );

      await s.step("GET the artifacts by digest: exact bytes, content type", async () => {
        for (const a of [sbom, sig]) {
          const m = await getManifest(reg.url, "c8/app", a.digest);
          assertEquals(m.bytes, a.bytes, `bytes of the ${a.kind} artifact`);
          assertEquals(m.contentType, MT.manifest, `Content-Type of the ${a.kind} artifact`);
        }
      });

      await s.step("skopeo inspect --raw of each artifact returns its exact bytes", async () => {
        for (const a of [sbom, sig]) {
          const out = await s.skopeo([
            "inspect",
            "--raw",
            "--tls-verify=false",
            dockerRef(reg, `c8/app@${a.digest}`),
          ]);
          assertEquals(out.stdout, text(a.bytes), `skopeo inspect --raw of the ${a.kind} artifact`);
        }
      });

      if (!TARGET_HAS_REFERRERS) {
        console.warn(`interop 8: ${TARGET} has no referrers API; referrers steps not run`);
        return;
      }

      const referrers = async (digest: string, query = "") => {
        const url = `${reg.url}/v2/c8/app/referrers/${digest}${query}`;
        const r = await http("GET", url, { want: [200] });
        assertEquals(
          r.headers.get("content-type"),
          MT.index,
          `Content-Type of GET referrers:\n${describeHttp("GET", url, r)}`,
        );
        const idx = JSON.parse(text(r.body)) as Index;
        assertEquals(
          [idx.schemaVersion, idx.mediaType],
          [2, MT.index],
          "referrers response is an image index",
        );
        return { idx, filtersApplied: r.headers.get("oci-filters-applied") };
      };
      const expected = (a: typeof sbom): Descriptor => ({
        mediaType: MT.manifest,
        digest: a.digest,
        size: a.size,
        artifactType: a.artifactType,
        annotations: {
          "org.opencontainers.image.created": "2026-01-02T03:04:05Z",
          "org.example.kind": a.kind,
        },
      });
      const byDigest = (ds: Descriptor[]) =>
        [...ds].sort((a, b) => a.digest.localeCompare(b.digest));

      await s.step("GET /v2/c8/app/referrers/<img digest> lists both artifacts", async () => {
        const { idx } = await referrers(img.manifest.digest);
        assertEquals(
          byDigest(idx.manifests),
          byDigest([expected(sbom), expected(sig)]),
          "referrers of img",
        );
      });

      await s.step("referrers ?artifactType= filter", async () => {
        const { idx, filtersApplied } = await referrers(
          img.manifest.digest,
          `?artifactType=${encodeURIComponent(SBOM)}`,
        );
        if (filtersApplied !== null) {
          assertEquals(filtersApplied, "artifactType", "OCI-Filters-Applied");
          assertEquals(idx.manifests, [expected(sbom)], "filtered referrers");
        } else {
          assert(
            idx.manifests.some((d) => d.digest === sbom.digest),
            "unfiltered referrers still list the SBOM",
          );
        }
      });

      await s.step("referrers of a digest nobody refers to: an empty index", async () => {
        const { idx } = await referrers(images.arm.manifest.digest);
        assertEquals(idx.manifests, [], "referrers of the arm image (never pushed here)");
        const other = await referrers(sbom.digest);
        assertEquals(other.idx.manifests, [], "referrers of the SBOM artifact");
      });

      await s.step("delete the signature artifact: it leaves the referrers list", async () => {
        await http("DELETE", `${reg.url}/v2/c8/app/manifests/${sig.digest}`, { want: [202] });
        const { idx } = await referrers(img.manifest.digest);
        assertEquals(
          idx.manifests,
          [expected(sbom)],
          "referrers of img after deleting the signature",
        );
      });
    },
  });
}
