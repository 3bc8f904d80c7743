// Unit tests of parseManifest (src/api/manifests.ts): media types, references, subject, artifacts.
// Structural checks only; existence of referenced blobs is the end-to-end tests' business.

import { parseManifest } from "../../src/oci/manifest.ts";
import { RegistryError } from "../../src/errors.ts";
import {
  assertEquals,
  assertThrows,
  bytes,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  imageIndex,
  imageManifest,
  jsonBytes,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
} from "../helpers.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (mediaType: string, c: string, size = 1) => ({ mediaType, digest: d(c), size });

function invalid(body: Uint8Array, contentType: string | null = OCI_MANIFEST): string {
  const error = assertThrows(
    () => parseManifest(body, contentType),
    RegistryError,
  ) as RegistryError;
  assertEquals(error.code, "MANIFEST_INVALID");
  assertEquals(error.status, 400);
  return error.message;
}

Deno.test("parseManifest: OCI image manifest", () => {
  const m = parseManifest(
    jsonBytes(imageManifest({
      config: desc(OCI_CONFIG, "c"),
      layers: [desc(OCI_LAYER, "1"), desc(OCI_LAYER, "2")],
      annotations: { a: "b" },
    })),
    OCI_MANIFEST,
  );
  assertEquals(m.mediaType, OCI_MANIFEST);
  assertEquals(m.kind, "image");
  assertEquals(m.references.map((r) => [r.digest.value, r.needs]), [
    [d("c"), "blob"],
    [d("1"), "blob"],
    [d("2"), "blob"],
  ]);
  assertEquals(m.subject, undefined);
  assertEquals(m.artifactType, OCI_CONFIG, "artifactType falls back to config.mediaType");
  assertEquals(m.annotations, { a: "b" });
});

Deno.test("parseManifest: index, Docker types and mediaType from Content-Type", () => {
  const index = parseManifest(jsonBytes(imageIndex([desc(OCI_MANIFEST, "a")])), OCI_INDEX);
  assertEquals([index.kind, index.mediaType], ["index", OCI_INDEX]);
  assertEquals(index.references.map((r) => r.needs), ["manifest"]);

  const docker = parseManifest(
    jsonBytes(
      imageManifest({
        mediaType: DOCKER_MANIFEST,
        config: desc("x", "c"),
        layers: [],
      }),
    ),
    DOCKER_MANIFEST,
  );
  assertEquals([docker.kind, docker.mediaType], ["image", DOCKER_MANIFEST]);

  const list = parseManifest(
    jsonBytes({
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: [desc(DOCKER_MANIFEST, "e")],
    }),
    DOCKER_LIST,
  );
  assertEquals([list.kind, list.mediaType], ["index", DOCKER_LIST]);

  // No mediaType field: the Content-Type decides, else the shape.
  const bare = { schemaVersion: 2, config: desc(OCI_CONFIG, "c"), layers: [] };
  assertEquals(parseManifest(jsonBytes(bare), DOCKER_MANIFEST).mediaType, DOCKER_MANIFEST);
  assertEquals(parseManifest(jsonBytes(bare), null).mediaType, OCI_MANIFEST);
  assertEquals(
    parseManifest(jsonBytes({ schemaVersion: 2, manifests: [] }), "application/json").mediaType,
    OCI_INDEX,
  );
  // Content-Type parameters are ignored.
  assertEquals(parseManifest(jsonBytes(bare), `${OCI_MANIFEST}; charset=utf-8`).kind, "image");
});

Deno.test("parseManifest: subject, artifactType and the empty config", () => {
  const m = parseManifest(
    jsonBytes(imageManifest({
      artifactType: "application/vnd.example.sbom",
      config: { mediaType: OCI_EMPTY, digest: d("4"), size: 2 },
      layers: [desc("application/vnd.example.sbom.layer", "5")],
      subject: desc(OCI_MANIFEST, "6"),
    })),
    OCI_MANIFEST,
  );
  assertEquals(m.subject?.value, d("6"));
  assertEquals(m.artifactType, "application/vnd.example.sbom");
  // The subject is not a reference that must exist.
  assertEquals(m.references.map((r) => r.digest.value), [d("4"), d("5")]);
});

Deno.test("parseManifest: non-distributable layers are not required", () => {
  const m = parseManifest(
    jsonBytes(imageManifest({
      config: desc(OCI_CONFIG, "c"),
      layers: [
        desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "1"),
        desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "2"),
        desc(OCI_LAYER, "3"),
      ],
    })),
    OCI_MANIFEST,
  );
  assertEquals(m.references.map((r) => r.digest.value), [d("c"), d("3")]);
});

Deno.test("parseManifest: malformed manifests are MANIFEST_INVALID", () => {
  const good = imageManifest({ config: desc(OCI_CONFIG, "c"), layers: [desc(OCI_LAYER, "1")] });
  const bad = (patch: Record<string, unknown>) => jsonBytes({ ...good, ...patch });
  invalid(bytes("{not json"));
  invalid(bytes(""));
  invalid(new Uint8Array([0xff, 0xfe, 0x7b, 0x7d])); // not UTF-8
  invalid(bytes("[]"));
  invalid(bytes("null"));
  invalid(bytes('"string"'));
  invalid(bad({ schemaVersion: 1 }));
  invalid(bad({ schemaVersion: "2" }));
  invalid(bad({ mediaType: 5 }));
  invalid(bad({ mediaType: "application/vnd.unknown+json" }));
  invalid(bad({ mediaType: OCI_INDEX }), OCI_MANIFEST); // body and header disagree
  invalid(bad({ config: undefined }));
  invalid(bad({ config: "x" }));
  invalid(bad({ layers: undefined }));
  invalid(bad({ layers: {} }));
  invalid(bad({ layers: [{ mediaType: OCI_LAYER, size: 1 }] }));
  invalid(bad({ layers: [{ mediaType: OCI_LAYER, digest: "sha256:short", size: 1 }] }));
  invalid(bad({ layers: [{ mediaType: OCI_LAYER, digest: d("1"), size: -1 }] }));
  invalid(bad({ layers: [{ mediaType: OCI_LAYER, digest: d("1"), size: 1.5 }] }));
  invalid(bad({ layers: [{ mediaType: OCI_LAYER, digest: d("1"), size: "1" }] }));
  invalid(bad({ layers: [{ digest: d("1"), size: 1 }] }));
  invalid(bad({ subject: { mediaType: OCI_MANIFEST, digest: "nope", size: 1 } }));
  invalid(jsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: "x" }), OCI_INDEX);
  invalid(jsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{}] }), OCI_INDEX);
  invalid(jsonBytes({ schemaVersion: 2 }), null); // no media type, no shape
});
