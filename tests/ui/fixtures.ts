// Shared machinery of the web UI's tests and bench: tar layers (gzip, zstd) made in memory, and
// a registry filled over its API with a multi-arch index, a signed image and a zstd layer.

import zlib from "node:zlib";
import {
  assertEquals,
  type Bytes,
  bytes,
  descriptorOf,
  digest,
  imageIndex,
  imageManifest,
  jsonBytes,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  type RegistryClient,
} from "../helpers.ts";
import type { Descriptor } from "../../src/oci/manifest.ts";

export const OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
export const COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json";
export const SPDX_SBOM = "application/spdx+json";

export interface TarFile {
  path: string;
  content?: string | Uint8Array;
  type?: "file" | "dir" | "symlink";
  link?: string;
  mode?: number;
}

/** A ustar archive (long paths in a pax header), as `tar --format=posix` would write. */
export function makeTar(files: TarFile[]): Bytes {
  const blocks: Uint8Array[] = [];
  const header = (name: string, size: number, flag: string, mode: number, link = "") => {
    const block = new Uint8Array(512);
    const put = (text: string, at: number, length: number) =>
      block.set(new TextEncoder().encode(text).subarray(0, length), at);
    const octal = (value: number, length: number) =>
      value.toString(8).padStart(length - 1, "0") + "\0";
    put(name, 0, 100);
    put(octal(mode, 8), 100, 8);
    put(octal(0, 8), 108, 8);
    put(octal(0, 8), 116, 8);
    put(octal(size, 12), 124, 12);
    put(octal(1_700_000_000, 12), 136, 12);
    put("        ", 148, 8);
    put(flag, 156, 1);
    put(link, 157, 100);
    put("ustar\0", 257, 6);
    put("00", 263, 2);
    let sum = 0;
    for (const byte of block) sum += byte;
    put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
    return block;
  };
  const padded = (data: Uint8Array) => {
    const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
    out.set(data);
    return out;
  };
  for (const file of files) {
    const type = file.type ?? "file";
    const data = typeof file.content === "string"
      ? new TextEncoder().encode(file.content)
      : file.content ?? new Uint8Array();
    if (new TextEncoder().encode(file.path).length > 99) {
      const record = (length: number) => `${length} path=${file.path}\n`;
      let length = record(0).length;
      while (record(length).length !== length) length = record(length).length;
      const pax = new TextEncoder().encode(record(length));
      blocks.push(header("PaxHeader", pax.length, "x", 0o644), padded(pax));
    }
    const flag = type === "dir" ? "5" : type === "symlink" ? "2" : "0";
    const mode = file.mode ?? (type === "dir" ? 0o755 : 0o644);
    const size = type === "file" ? data.length : 0;
    blocks.push(header(file.path.slice(0, 99), size, flag, mode, file.link ?? ""));
    if (size > 0) blocks.push(padded(data));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((total, block) => total + block.length, 0));
  let at = 0;
  for (const block of blocks) {
    out.set(block, at);
    at += block.length;
  }
  return out;
}

export const gzip = (data: Uint8Array): Bytes => new Uint8Array(zlib.gzipSync(data));
export const zstd = (data: Uint8Array): Bytes => new Uint8Array(zlib.zstdCompressSync(data));

export interface ImageSpec {
  /** Each layer's files, and how it is compressed (default gzip). */
  layers: { files: TarFile[]; compression?: "gzip" | "zstd"; createdBy?: string }[];
  architecture?: string;
  variant?: string;
  env?: string[];
  labels?: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  created?: string;
}

export interface PushedManifest {
  digest: string;
  descriptor: Descriptor;
  layers: Descriptor[];
}

async function pushOk(client: RegistryClient, name: string, data: Bytes) {
  const res = await client.pushBlob(name, data);
  assertEquals(res.status, 201, `push blob to ${name}: ${res.text}`);
}

async function putManifest(client: RegistryClient, name: string, reference: string, body: object) {
  const res = await client.pushManifest(name, reference, body);
  assertEquals(res.status, 201, `push manifest ${name}:${reference}: ${res.text}`);
  return res.headers.get("docker-content-digest")!;
}

/** Pushes an image (layers, config with history, manifest) and tags it when `tag` is given. */
export async function pushSampleImage(
  client: RegistryClient,
  name: string,
  tag: string | undefined,
  spec: ImageSpec,
): Promise<PushedManifest> {
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  const history: Record<string, unknown>[] = [];
  for (const layer of spec.layers) {
    const tar = makeTar(layer.files);
    const compressed = layer.compression === "zstd" ? zstd(tar) : gzip(tar);
    await pushOk(client, name, compressed);
    layers.push(
      descriptorOf(layer.compression === "zstd" ? OCI_LAYER_ZSTD : OCI_LAYER, compressed),
    );
    diffIds.push(digest(tar));
    history.push({
      created: spec.created ?? "2026-11-01T10:00:00Z",
      created_by: layer.createdBy ?? `COPY ${layer.files[0]?.path ?? "."} /`,
    });
  }
  history.splice(1, 0, {
    created: spec.created ?? "2026-11-01T10:00:00Z",
    created_by: "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    empty_layer: true,
  });
  const config = jsonBytes({
    created: spec.created ?? "2026-11-01T10:00:00Z",
    architecture: spec.architecture ?? "amd64",
    ...(spec.variant ? { variant: spec.variant } : {}),
    os: "linux",
    config: {
      Env: spec.env ?? ["PATH=/usr/local/bin:/usr/bin:/bin"],
      Entrypoint: spec.entrypoint ?? ["/bin/app"],
      Cmd: spec.cmd ?? ["--serve"],
      WorkingDir: "/srv",
      User: spec.user ?? "1000:1000",
      ExposedPorts: { "8080/tcp": {} },
      Labels: spec.labels ?? { "org.opencontainers.image.title": name },
    },
    rootfs: { type: "layers", diff_ids: diffIds },
    history,
  });
  await pushOk(client, name, config);
  const manifest = imageManifest({ config: descriptorOf(OCI_CONFIG, config), layers });
  const manifestDigest = await putManifest(
    client,
    name,
    tag ?? digest(jsonBytes(manifest)),
    manifest,
  );
  return {
    digest: manifestDigest,
    descriptor: descriptorOf(manifest.mediaType as string, jsonBytes(manifest)),
    layers,
  };
}

/** Pushes an artifact (a signature, an SBOM) whose subject is `subject`. */
export async function pushReferrer(
  client: RegistryClient,
  name: string,
  subject: Descriptor,
  artifactType: string,
  payload: string,
): Promise<string> {
  const layer = bytes(payload);
  await pushOk(client, name, layer);
  await pushOk(client, name, bytes("{}"));
  const manifest = imageManifest({
    artifactType,
    config: descriptorOf(OCI_EMPTY, bytes("{}")),
    layers: [descriptorOf("application/octet-stream", layer)],
    subject,
    annotations: { "org.opencontainers.image.created": "2026-11-02T09:00:00Z" },
  });
  return await putManifest(client, name, digest(jsonBytes(manifest)), manifest);
}

const base: TarFile[] = [
  { path: "bin", type: "dir" },
  { path: "bin/sh", content: "#!/bin/busybox\n", mode: 0o755 },
  { path: "etc", type: "dir" },
  { path: "etc/os-release", content: 'NAME="Sample Linux"\nVERSION_ID=3.20\n' },
  { path: "etc/hostname", content: "sample\n" },
  { path: "lib", type: "symlink", link: "usr/lib" },
];
const app = (version: string): TarFile[] => [
  { path: "srv", type: "dir" },
  { path: "bin/app", content: `app ${version}\n`.repeat(200), mode: 0o755 },
  { path: "srv/config.yaml", content: `version: ${version}\nport: 8080\n` },
  { path: `srv/${"deeply/nested/".repeat(8)}asset-${version}.txt`, content: "asset\n" },
];

export interface SampleRegistry {
  /** `team/app`: 1.0 and 1.1 (= latest), 1.1 signed and with an SBOM. */
  app10: PushedManifest;
  app11: PushedManifest;
  signature: string;
  sbom: string;
  /** `team/multi:latest`, an index of linux/amd64 and linux/arm64/v8. */
  multi: string;
  /** `tools/zstd:1.0`, whose second layer is zstd-compressed. */
  zstdImage: PushedManifest;
}

/** Fills a registry with the images the UI's tests look at (through its API). */
export async function pushSamples(client: RegistryClient): Promise<SampleRegistry> {
  const app10 = await pushSampleImage(client, "team/app", "1.0", {
    layers: [{ files: base, createdBy: "ADD rootfs.tar /" }, {
      files: app("1.0"),
      createdBy: "COPY app /bin/app",
    }],
    env: ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=production", "LOG_LEVEL=info"],
    labels: { "org.opencontainers.image.version": "1.0", "team": "platform" },
    created: "2026-11-01T10:00:00Z",
  });
  const app11 = await pushSampleImage(client, "team/app", "1.1", {
    layers: [
      { files: base, createdBy: "ADD rootfs.tar /" },
      { files: app("1.1"), createdBy: "COPY app /bin/app" },
      {
        files: [{ path: "srv/plugins", type: "dir" }, {
          path: "srv/plugins/metrics.so",
          content: "plugin\n".repeat(500),
        }],
        createdBy: "RUN install-plugin metrics",
      },
    ],
    env: ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=production", "LOG_LEVEL=debug"],
    labels: { "org.opencontainers.image.version": "1.1", "team": "platform" },
    created: "2026-11-15T10:00:00Z",
  });
  await putManifestFrom(client, "team/app", "latest", app11.digest);
  const signature = await pushReferrer(
    client,
    "team/app",
    app11.descriptor,
    COSIGN_SIGNATURE,
    JSON.stringify({ critical: { image: { "docker-manifest-digest": app11.digest } } }),
  );
  const sbom = await pushReferrer(
    client,
    "team/app",
    app11.descriptor,
    SPDX_SBOM,
    JSON.stringify({ spdxVersion: "SPDX-2.3", name: "team/app" }),
  );
  const children: Descriptor[] = [];
  for (const [architecture, variant] of [["amd64", undefined], ["arm64", "v8"]] as const) {
    const image = await pushSampleImage(client, "team/multi", undefined, {
      layers: [{ files: base }, { files: app(`multi-${architecture}`) }],
      architecture,
      variant,
    });
    children.push({
      ...image.descriptor,
      platform: { os: "linux", architecture, ...(variant ? { variant } : {}) },
    });
  }
  const multi = await putManifest(client, "team/multi", "latest", imageIndex(children));
  const zstdImage = await pushSampleImage(client, "tools/zstd", "1.0", {
    layers: [{ files: base }, { files: app("zstd"), compression: "zstd" }],
  });
  return { app10, app11, signature, sbom, multi, zstdImage };
}

/** Tags a manifest the repository already holds. */
async function putManifestFrom(client: RegistryClient, name: string, tag: string, from: string) {
  const res = await client.get(`/v2/${name}/manifests/${from}`, {
    accept: [OCI_INDEX, "application/vnd.oci.image.manifest.v1+json"].join(", "),
  });
  assertEquals(res.status, 200, `get ${name}@${from}`);
  const type = res.headers.get("content-type")!;
  const put = await client.pushManifest(name, tag, res.body, type);
  assertEquals(put.status, 201, `tag ${name}:${tag}: ${put.text}`);
}
