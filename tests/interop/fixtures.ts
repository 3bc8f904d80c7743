// Test images of the interoperability suite, built in an OCI image layout:
// - "img": a 3-layer linux/amd64 image built with umoci,
// - "arm": a 2-layer linux/arm64 image built with umoci,
// - "multi": an image index of both (amd64 + arm64), written by hand,
// - "big" (only on request): one layer of a 256 MiB file, gzip-framed without compression.

import { createHash } from "node:crypto";
import { createGzip } from "node:zlib";
import {
  assert,
  assertEquals,
  blobPath,
  type Descriptor,
  type Index,
  layoutRef,
  type Manifest,
  MT,
  newLayout,
  readBlob,
  readJsonBlob,
  type Session,
  setLayoutRef,
  writeBlob,
} from "./helpers.ts";

export interface ImageInfo {
  ref: string;
  manifest: Descriptor;
  manifestBytes: Uint8Array;
  config: string;
  layers: string[];
  architecture: string;
}

export interface Images {
  layout: string;
  img: ImageInfo;
  arm: ImageInfo;
  multi: { ref: string; index: Descriptor; indexBytes: Uint8Array; children: Descriptor[] };
}

export async function imageInfo(layout: string, ref: string): Promise<ImageInfo> {
  const manifest = await layoutRef(layout, ref);
  const manifestBytes = await readBlob(layout, manifest.digest);
  const m = JSON.parse(new TextDecoder().decode(manifestBytes)) as Manifest;
  const cfg = await readJsonBlob<{ architecture: string; os: string }>(layout, m.config.digest);
  return {
    ref,
    manifest,
    manifestBytes,
    config: m.config.digest,
    layers: m.layers.map((l) => l.digest),
    architecture: cfg.architecture,
  };
}

/** Builds img (3 layers, amd64), arm (arm64) with umoci and the index "multi" by hand. */
export async function buildImages(s: Session, layout = `${s.dir}/source-layout`): Promise<Images> {
  const files = `${s.dir}/fixture-files`;
  await Deno.mkdir(`${files}/etc-app`, { recursive: true });
  // Content unique to this session, so that no registry or cache has seen these blobs before.
  const nonce = crypto.randomUUID();
  await Deno.writeTextFile(`${files}/hello.txt`, `hello from layer one ${nonce}\n`);
  await Deno.writeTextFile(`${files}/etc-app/app.conf`, `layer = two\nnonce = ${nonce}\n`);
  await Deno.writeTextFile(`${files}/etc-app/empty`, "");
  await Deno.writeTextFile(`${files}/three.bin`, "x".repeat(10_000) + nonce);
  await Deno.writeTextFile(`${files}/arm.txt`, `arm64 ${nonce}\n`);
  await Deno.writeTextFile(`${files}/arm2.txt`, `arm64 second layer ${nonce}\n`);

  const img = `${layout}:img`;
  await s.umoci(["init", "--layout", layout]);
  await s.umoci(["new", "--image", img]);
  await s.umoci(["insert", "--image", img, `${files}/hello.txt`, "/hello.txt"]);
  await s.umoci(["insert", "--image", img, `${files}/etc-app`, "/etc/app"]);
  await s.umoci(["insert", "--image", img, `${files}/three.bin`, "/opt/three.bin"]);
  await s.umoci([
    "config",
    "--image",
    img,
    "--os",
    "linux",
    "--architecture",
    "amd64",
    "--config.cmd",
    "/hello.txt",
    "--config.label",
    "org.example.interop=amd64",
  ]);

  const arm = `${layout}:arm`;
  await s.umoci(["new", "--image", arm]);
  await s.umoci(["insert", "--image", arm, `${files}/arm.txt`, "/arm.txt"]);
  await s.umoci(["insert", "--image", arm, `${files}/arm2.txt`, "/arm2.txt"]);
  await s.umoci([
    "config",
    "--image",
    arm,
    "--os",
    "linux",
    "--architecture",
    "arm64",
    "--config.cmd",
    "/arm.txt",
  ]);
  await s.umoci(["gc", "--layout", layout]);

  const imgInfo = await imageInfo(layout, "img");
  const armInfo = await imageInfo(layout, "arm");
  const children: Descriptor[] = [
    { ...pick(imgInfo.manifest), platform: { architecture: "amd64", os: "linux" } },
    { ...pick(armInfo.manifest), platform: { architecture: "arm64", os: "linux" } },
  ];
  const index: Index = {
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: children,
    annotations: { "org.example.interop": "index by hand" },
  };
  const indexBytes = new TextEncoder().encode(JSON.stringify(index, null, 2) + "\n");
  const indexDesc = await writeBlob(layout, MT.index, indexBytes);
  await setLayoutRef(layout, "multi", indexDesc);
  return {
    layout,
    img: imgInfo,
    arm: armInfo,
    multi: { ref: "multi", index: indexDesc, indexBytes, children },
  };
}

function pick(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export interface BigImage {
  layout: string;
  ref: string;
  manifest: Descriptor;
  config: string;
  layer: Descriptor;
  layerFileSize: number;
}

/** Size of the big layer's file: 256 MiB, or INTEROP_BIG_LAYER_MIB for quicker local runs. */
export const BIG_LAYER_BYTES: number = Number(Deno.env.get("INTEROP_BIG_LAYER_MIB") ?? "256") *
  1024 * 1024;

/**
 * Writes an image whose one layer is a tar of a single BIG_LAYER_BYTES file of xorshift data,
 * gzip-framed at level 0 (stored blocks) so that it costs about a second to make. Its digests are
 * computed while it is written.
 */
export async function buildBigImage(
  layout: string,
  fileBytes = BIG_LAYER_BYTES,
  ref = "big",
): Promise<BigImage> {
  await newLayout(layout);
  const tmpPath = `${layout}/blobs/sha256/.partial`;
  const out = await Deno.open(tmpPath, { write: true, create: true, truncate: true });
  const gz = createGzip({ level: 0, chunkSize: 1 << 20 });
  const gzHash = createHash("sha256");
  const tarHash = createHash("sha256");
  let gzSize = 0;
  const writer = out.writable.getWriter();
  let writeChain: Promise<void> = Promise.resolve();
  const finished = new Promise<void>((resolve, reject) => {
    gz.on("data", (chunk: Uint8Array) => {
      gzHash.update(chunk);
      gzSize += chunk.length;
      const copy = chunk.slice();
      writeChain = writeChain.then(() => writer.write(copy));
    });
    gz.on("end", () => resolve());
    gz.on("error", reject);
  });
  const feed = async (chunk: Uint8Array) => {
    tarHash.update(chunk);
    if (!gz.write(chunk)) await new Promise((r) => gz.once("drain", r));
  };

  await feed(tarHeader(`big-${crypto.randomUUID()}.bin`, fileBytes));
  let seed = (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
  const chunk = new Uint8Array(1 << 20);
  const words = new Uint32Array(chunk.buffer);
  for (let off = 0; off < fileBytes; off += chunk.length) {
    for (let i = 0; i < words.length; i++) {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      words[i] = seed;
    }
    const n = Math.min(chunk.length, fileBytes - off);
    await feed(n === chunk.length ? chunk.slice() : chunk.slice(0, n));
  }
  const pad = (512 - (fileBytes % 512)) % 512;
  await feed(new Uint8Array(pad + 1024)); // padding, then the two zero blocks that end a tar
  gz.end();
  await finished;
  await writeChain;
  await writer.close();

  const layerDigest = `sha256:${gzHash.digest("hex")}`;
  const diffId = `sha256:${tarHash.digest("hex")}`;
  await Deno.rename(tmpPath, blobPath(layout, layerDigest));
  const layer: Descriptor = { mediaType: MT.layerGzip, digest: layerDigest, size: gzSize };
  const config = await writeBlob(
    layout,
    MT.config,
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created_by: "interop suite: big layer" }],
    }),
  );
  const manifest: Manifest = { schemaVersion: 2, mediaType: MT.manifest, config, layers: [layer] };
  const manifestDesc = await writeBlob(layout, MT.manifest, JSON.stringify(manifest));
  await setLayoutRef(layout, ref, manifestDesc);
  const st = await Deno.stat(blobPath(layout, layerDigest));
  assertEquals(st.size, gzSize, "big layer file size");
  assert(gzSize > fileBytes, "gzip level 0 should not shrink random data");
  return {
    layout,
    ref,
    manifest: manifestDesc,
    config: config.digest,
    layer,
    layerFileSize: fileBytes,
  };
}

/** A ustar header for one regular file. */
function tarHeader(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (off: number, len: number, value: string) =>
    h.set(enc.encode(value).slice(0, len), off);
  const octal = (off: number, len: number, value: number) =>
    put(off, len, value.toString(8).padStart(len - 1, "0") + "\0");
  put(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1_700_000_000);
  put(148, 8, "        "); // checksum placeholder
  put(156, 1, "0");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}
