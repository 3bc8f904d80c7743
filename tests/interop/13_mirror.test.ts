// Case 13 (issue 13): one mirror process in front of three upstreams — Simple Registry with token
// auth (Docker Hub's flow), CNCF distribution with htpasswd, and a registry that dies mid-test —
// pulled through by containerd (`ns=` from a `_default` hosts.toml), podman (a path prefix in
// registries.conf) and skopeo (by digest). Upstream requests are counted in the upstreams' logs.

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { htpasswdLine } from "../auth/fixtures.ts";
import { sendSignal } from "../helpers.ts";
import {
  assert,
  assertEquals,
  dockerRef,
  http,
  type Manifest,
  MT,
  newLayout,
  readBlob,
  type RegistryProcess,
  type RequestLine,
  Session,
  setLayoutRef,
  skipUnless,
  verifyLayoutBlobs,
  writeBlob,
} from "./helpers.ts";
import { BIG_LAYER_BYTES, buildBigImage, buildImages, type ImageInfo } from "./fixtures.ts";

const CLIENTS = ["skopeo", "umoci", "podman", "docker-registry", "containerd", "ctr"] as const;
/** The registry hosts containerd and podman are told they pull from (never dialled). */
const HOST_A = "registry-a.test";
const HOST_B = "registry-b.test";
const HOST_C = "registry-c.test";
/** Upstream C's tag freshness: a moved tag shows after it, not before. */
const TTL_C_MS = 5000;

Deno.test({
  name: "interop 13 [simple/fs]: a mirror of three upstreams for containerd, podman and skopeo",
  ignore: skipUnless("interop 13", CLIENTS, { registry: false }),
  fn: async (t) => {
    await using s = await Session.open(t, CLIENTS, { registry: false });
    const users = `${s.dir}/htpasswd`;
    await Deno.writeTextFile(
      users,
      [htpasswdLine("alice", "alice-pw"), htpasswdLine("bob", "bob-pw")].join("\n") + "\n",
    );

    const [a, b, c] = await s.step(
      "start upstreams A (token auth), B (distribution, htpasswd), C",
      () =>
        Promise.all([
          s.registry("fs", {
            kind: "simple",
            label: "upstream A (token auth)",
            args: ["--auth", "token", "--htpasswd", users],
          }),
          s.registry("fs", {
            kind: "distribution",
            label: "upstream B (distribution, htpasswd)",
            htpasswd: users,
          }),
          s.registry("fs", { kind: "simple", label: "upstream C (dies mid-test)" }),
        ]),
    );

    const images = await s.step("build images", () => buildImages(s));
    const { img, arm } = images;
    const big = await s.step(
      `build a ${BIG_LAYER_BYTES / 1024 / 1024} MiB layer and a 64 MiB one`,
      async () => ({
        big: await buildBigImage(`${s.dir}/big-layout`),
        other: await buildBigImage(`${s.dir}/big2-layout`, 64 * 1024 * 1024, "big2"),
      }),
    );
    const corrupt = await s.step("build an image whose layer B will corrupt", async () => {
      const layout = `${s.dir}/corrupt-layout`;
      await newLayout(layout);
      const layer = await writeBlob(
        layout,
        MT.layerGzip,
        gzipSync(crypto.getRandomValues(new Uint8Array(65536))),
      );
      const config = await writeBlob(
        layout,
        MT.config,
        JSON.stringify({ architecture: "amd64", os: "linux" }),
      );
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MT.manifest,
        config,
        layers: [layer],
      };
      await setLayoutRef(
        layout,
        "corrupt",
        await writeBlob(layout, MT.manifest, JSON.stringify(manifest)),
      );
      return { layout, layer };
    });

    await s.step("seed the upstreams", async () => {
      const toA = ["--dest-creds", "alice:alice-pw"];
      const toB = ["--dest-creds", "bob:bob-pw"];
      await s.skopeoCopy(`oci:${images.layout}:multi`, dockerRef(a, "c13/multi:v1"), [
        "--all",
        ...toA,
      ]);
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(a, "c13/img:v1"), toA);
      await s.skopeoCopy(`oci:${big.big.layout}:big`, dockerRef(a, "c13/big:v1"), toA);
      await s.skopeoCopy(`oci:${big.other.layout}:big2`, dockerRef(a, "c13/big2:v1"), toA);
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(b, "c13/img:v1"), toB);
      await s.skopeoCopy(`oci:${images.layout}:arm`, dockerRef(b, "c13/only-b:v1"), toB);
      await s.skopeoCopy(`oci:${corrupt.layout}:corrupt`, dockerRef(b, "c13/corrupt:v1"), toB);
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(c, "c13/img:v1"));
      await s.skopeoCopy(`oci:${images.layout}:arm`, dockerRef(c, "c13/img:arm"));
    });

    const seeded = a.mark();
    const mirror = await s.step(
      "start the mirror (--proxy-config, one process for all three)",
      async () => {
        await Deno.writeTextFile(`${s.dir}/b-password`, "bob-pw\n");
        const config = {
          upstreams: [
            {
              name: "a",
              url: a.url,
              namespaces: [HOST_A],
              ttl: "1h",
              username: "alice",
              password: "${A_PASSWORD}",
            },
            {
              name: "b",
              url: b.url,
              namespaces: [HOST_B],
              ttl: "1h",
              username: "bob",
              passwordFile: `${s.dir}/b-password`,
              default: true,
            },
            { name: "c", url: c.url, namespaces: [HOST_C], ttl: `${TTL_C_MS}ms` },
          ],
        };
        await Deno.writeTextFile(`${s.dir}/proxy.json`, JSON.stringify(config, null, 2));
        return await s.registry("fs", {
          kind: "simple",
          label: "mirror",
          args: ["--proxy-config", `${s.dir}/proxy.json`],
          env: { A_PASSWORD: "alice-pw" },
        });
      },
    );
    const mirrorHost = mirror.host;

    // -------------------------------------------------------------------------- containerd
    const ctr = await s.step(
      "start a private containerd (isolated content per namespace)",
      () => startContainerd(s, mirror),
    );

    await s.step(
      "ctr pulls registry-a.test/c13/multi:v1 through the mirror (ns=registry-a.test)",
      async () => {
        const mark = mirror.mark();
        await ctr.pull("first", `${HOST_A}/c13/multi:v1`);
        const viaNs = mirror.requestsSince(mark).filter((r) => r.query.includes(`ns=${HOST_A}`));
        assert(
          viaNs.length >= 4,
          `containerd's requests carry ns=${HOST_A}: ${describe(mirror.requestsSince(mark))}`,
        );
        await ctr.expectContent(images.multi.index.digest, images.multi.indexBytes);
        await ctr.expectImage(img, images.layout);
      },
    );

    await s.step("the arm64 child of the index was never fetched (children on demand)", () => {
      const asked = a.requestsSince(seeded).filter((r) =>
        r.path.includes(arm.manifest.digest) || arm.layers.some((l) => r.path.includes(l))
      );
      assertEquals(asked, [], "upstream A saw no request for the arm64 image");
      return Promise.resolve();
    });

    await s.step("a second pull of the same image makes no upstream request", async () => {
      const mark = a.mark();
      const mirrorMark = mirror.mark();
      await ctr.pull("second", `${HOST_A}/c13/multi:v1`);
      assert(
        mirror.requestsSince(mirrorMark).length >= 4,
        "the second pull went through the mirror",
      );
      assertEquals(a.requestsSince(mark), [], "upstream A was not asked");
      await ctr.expectImage(img, images.layout, "second");
    });

    // -------------------------------------------------------------------------- podman
    await s.step("podman pulls registry-b.test/c13/img:v1 through the path prefix /b", async () => {
      await Deno.writeTextFile(
        s.env.CONTAINERS_REGISTRIES_CONF,
        `unqualified-search-registries = []\n\n[[registry]]\nprefix = "${HOST_B}"\nlocation = "${HOST_B}"\n\n` +
          `[[registry.mirror]]\nlocation = "${mirrorHost}/b"\ninsecure = true\n`,
      );
      const mark = mirror.mark();
      await s.podman(["pull", `${HOST_B}/c13/img:v1`], { timeoutMs: 180_000 });
      const digest =
        (await s.podman(["image", "inspect", "--format", "{{.Digest}}", `${HOST_B}/c13/img:v1`]))
          .stdout.trim();
      assertEquals(digest, img.manifest.digest, "podman's image digest");
      assert(
        mirror.requestsSince(mark).some((r) => r.path === "/v2/b/c13/img/manifests/v1"),
        `podman came through /v2/b/: ${describe(mirror.requestsSince(mark))}`,
      );
      const again = b.mark();
      await s.podman(["rmi", `${HOST_B}/c13/img:v1`]);
      await s.podman(["pull", `${HOST_B}/c13/img:v1`], { timeoutMs: 180_000 });
      assertEquals(b.requestsSince(again), [], "upstream B was not asked the second time");
    });

    // -------------------------------------------------------------------------- skopeo
    await s.step("skopeo copies by digest through the mirror: identical bytes", async () => {
      const out = `${s.dir}/by-digest`;
      await s.skopeoCopy(dockerRef(mirror, `a/c13/img@${img.manifest.digest}`), `oci:${out}:img`);
      assertEquals(await readBlob(out, img.manifest.digest), img.manifestBytes, "manifest bytes");
      for (const d of [img.config, ...img.layers]) {
        assertEquals(await readBlob(out, d), await readBlob(images.layout, d), `blob ${d}`);
      }
      await verifyLayoutBlobs(out);
    });

    await s.step("the default upstream (B) answers names no local repository has", async () => {
      const raw = await s.skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        dockerRef(mirror, "c13/only-b:v1"),
      ]);
      assertEquals(new TextEncoder().encode(raw.stdout), arm.manifestBytes, "B's c13/only-b:v1");
      // A local push beside the mirror, then pulled back.
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(mirror, "c13/mine:v1"));
      await s.skopeoCopy(dockerRef(mirror, "c13/mine:v1"), `oci:${s.dir}/mine:img`);
      // A push to a mirrored repository is refused.
      await s.skopeoCopy(`oci:${images.layout}:img`, dockerRef(mirror, "a/c13/pushed:v1"))
        .then(() => assert(false, "a push to a/… must fail"), () => {});
    });

    // -------------------------------------------------------------------------- one download
    await s.step(
      `20 clients pull the uncached ${
        BIG_LAYER_BYTES / 1024 / 1024
      } MiB layer: one upstream download`,
      async () => {
        const mark = a.mark();
        const layer = big.big.layer;
        const url = `${mirror.url}/v2/a/c13/big/blobs/${layer.digest}`;
        const stored = `${mirror.dataDir}/blobs/sha256/${layer.digest.slice(7, 9)}/${
          layer.digest.slice(7)
        }`;
        let firstByteBeforeStored: boolean | undefined;
        const pulls = Array.from({ length: 20 }, (_, i) =>
          hashUrl(
            url,
            i === 0
              ? async () => {
                firstByteBeforeStored = !await exists(stored);
              }
              : undefined,
          ));
        for (const pulled of await Promise.all(pulls)) {
          assertEquals(
            pulled,
            { status: 200, digest: layer.digest, size: layer.size },
            "a client's layer",
          );
        }
        assert(firstByteBeforeStored, "the first client got bytes before the layer was complete");
        const gets = a.requestsSince(mark).filter((r) =>
          r.method === "GET" && r.path === `/v2/c13/big/blobs/${layer.digest}`
        );
        assertEquals(gets.length, 1, `one download upstream: ${describe(a.requestsSince(mark))}`);
      },
    );

    await s.step("a client that disconnects mid-layer leaves the cache correct", async () => {
      const mark = a.mark();
      const layer = big.other.layer;
      const url = `${mirror.url}/v2/a/c13/big2/blobs/${layer.digest}`;
      const abort = new AbortController();
      const response = await fetch(url, { signal: abort.signal });
      const reader = response.body!.getReader();
      await reader.read();
      abort.abort();
      await reader.cancel().catch(() => {});
      // The download goes on; a later pull gets the whole layer.
      assertEquals(
        await hashUrl(url),
        { status: 200, digest: layer.digest, size: layer.size },
        "the layer, pulled again",
      );
      const gets = a.requestsSince(mark).filter((r) =>
        r.method === "GET" && r.path.endsWith(layer.digest)
      );
      assertEquals(gets.length, 1, "one download, finished for the cache");
      await s.skopeoCopy(dockerRef(mirror, "a/c13/big2:v1"), `oci:${s.dir}/big2-copy:big2`);
      await verifyLayoutBlobs(`${s.dir}/big2-copy`);
    });

    // -------------------------------------------------------------------------- corrupt blob
    await s.step("a corrupted upstream blob is refused and not cached", async () => {
      const hex = corrupt.layer.digest.slice(7);
      const file = `${b.dataDir}/storage/docker/registry/v2/blobs/sha256/${
        hex.slice(0, 2)
      }/${hex}/data`;
      const bytes = await Deno.readFile(file);
      bytes[bytes.length >> 1] ^= 0xff;
      await Deno.writeFile(file, bytes);
      const url = `${mirror.url}/v2/b/c13/corrupt/blobs/${corrupt.layer.digest}`;
      for (let attempt = 0; attempt < 2; attempt++) {
        const got = await hashUrl(url).catch((error) => ({ error: String(error) }));
        assert(
          "error" in got || got.digest !== corrupt.layer.digest,
          `attempt ${attempt}: ${JSON.stringify(got)}`,
        );
        assert(
          !await exists(`${mirror.dataDir}/blobs/sha256/${hex.slice(0, 2)}/${hex}`),
          "not cached",
        );
      }
      await s.skopeoCopy(dockerRef(mirror, "b/c13/corrupt:v1"), `oci:${s.dir}/corrupt-copy:x`)
        .then(() => assert(false, "skopeo must refuse the image"), () => {});
      assert(
        mirror.lines.some((line) =>
          line.includes("proxy fetch failed") && line.includes("do not match")
        ),
        "the mirror logged the mismatch",
      );
    });

    // -------------------------------------------------------------------------- ttl, then C dies
    await s.step("a tag moved upstream is seen after the ttl, not before", async () => {
      const tagUrl = `${mirror.url}/v2/c/c13/img/manifests/v1`;
      const accept = { accept: `${MT.manifest}, ${MT.index}` };
      const digestOf = async () =>
        (await http("GET", tagUrl, { headers: accept, want: [200] })).headers.get(
          "docker-content-digest",
        );
      assertEquals(await digestOf(), img.manifest.digest, "cached v1");
      const confirmed = performance.now();
      // Move v1 on C to the arm image (its blobs are there under c13/img:arm).
      await http("PUT", `${c.url}/v2/c13/img/manifests/v1`, {
        headers: { "content-type": MT.manifest },
        body: arm.manifestBytes as Uint8Array<ArrayBuffer>,
        want: [201],
      });
      const before = await digestOf();
      const elapsed = performance.now() - confirmed;
      assert(elapsed < TTL_C_MS, `checked within the ttl (${Math.round(elapsed)} ms)`);
      assertEquals(before, img.manifest.digest, "not before the ttl");
      await new Promise((resolve) => setTimeout(resolve, TTL_C_MS + 500 - elapsed));
      assertEquals(await digestOf(), arm.manifest.digest, "after the ttl");
      await s.skopeoCopy(dockerRef(mirror, "c/c13/img:v1"), `oci:${s.dir}/moved:arm`);
    });

    await s.step(
      "with C killed, its cached tags still pull (stale), uncached ones are 503",
      async () => {
        await c.kill();
        await new Promise((resolve) => setTimeout(resolve, TTL_C_MS + 500)); // past the ttl
        const mark = mirror.mark();
        await s.skopeoCopy(dockerRef(mirror, "c/c13/img:v1"), `oci:${s.dir}/stale:arm`);
        assertEquals(
          await readBlob(`${s.dir}/stale`, arm.manifest.digest),
          arm.manifestBytes,
          "the stale image",
        );
        assert(
          mirror.linesSince(mark).some((line) => line.includes('"proxy.result":"stale"')),
          "the stale answer is logged",
        );
        const uncached = await http("GET", `${mirror.url}/v2/c/c13/never/manifests/v1`, {
          want: [503],
        });
        assert(
          new TextDecoder().decode(uncached.body).includes("upstream c"),
          "names the upstream",
        );
      },
      { allowServerErrors: true },
    );

    await s.step("the mirror logged each answer: hit, miss, stale", () => {
      const results = new Set(
        mirror.lines.map((line) => /"proxy\.result":"(\w+)"/.exec(line)?.[1]),
      );
      for (const result of ["hit", "miss", "stale"]) {
        assert(results.has(result), `a ${result} is logged`);
      }
      return Promise.resolve();
    });
  },
});

// ---------------------------------------------------------------------------------------------

interface Containerd {
  /** `ctr images pull` in a namespace (content is isolated per namespace). */
  pull(namespace: string, ref: string): Promise<void>;
  /** The content store holds exactly these bytes under the digest. */
  expectContent(digest: string, bytes: Uint8Array, namespace?: string): Promise<void>;
  /** Manifest, config and layers of the image, byte for byte as in the layout. */
  expectImage(image: ImageInfo, layout: string, namespace?: string): Promise<void>;
}

/** containerd as root with its own root, state, socket and config in the session's dir. */
async function startContainerd(s: Session, mirror: RegistryProcess): Promise<Containerd> {
  const dir = `${s.dir}/containerd`;
  await Deno.mkdir(`${dir}/hosts/_default`, { recursive: true });
  const socket = `${dir}/containerd.sock`;
  await Deno.writeTextFile(
    `${dir}/config.toml`,
    `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n` +
      `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n` +
      `[grpc]\n  address = "${socket}"\n[ttrpc]\n  address = "${socket}.ttrpc"\n` +
      `[debug]\n  address = "${dir}/debug.sock"\n` +
      `[plugins."io.containerd.metadata.v1.bolt"]\n  content_sharing_policy = "isolated"\n`,
  );
  // Every registry host is mirrored by the registry under test; containerd adds ?ns=<host>.
  await Deno.writeTextFile(
    `${dir}/hosts/_default/hosts.toml`,
    `[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
  const child = new Deno.Command("containerd", {
    args: ["--config", `${dir}/config.toml`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const pump = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log.push(chunk);
  })();
  s.defer(async () => {
    sendSignal(child, "SIGTERM");
    await child.status;
    await pump.catch(() => {});
  });
  for (let i = 0;; i++) {
    const ok = await s.run(["ctr", "--address", socket, "version"], { okCodes: [0, 1] });
    if (ok.code === 0) break;
    if (i > 100) throw new Error(`containerd did not start:\n${log.join("").slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const content = `${dir}/root/io.containerd.content.v1.content/blobs`;
  const ctr = (namespace: string, args: string[]) =>
    s.run(["ctr", "--address", socket, "--namespace", namespace, ...args], { timeoutMs: 180_000 });
  const expectContent = async (digest: string, bytes: Uint8Array, namespace = "first") => {
    const [algorithm, hex] = digest.split(":");
    const listed = (await ctr(namespace, ["content", "ls", "--quiet"])).stdout.split("\n");
    assert(listed.includes(digest), `namespace ${namespace} holds ${digest}`);
    assertEquals(await Deno.readFile(`${content}/${algorithm}/${hex}`), bytes, `content ${digest}`);
  };
  return {
    async pull(namespace, ref) {
      await ctr(namespace, [
        "images",
        "pull",
        "--hosts-dir",
        `${dir}/hosts`,
        "--snapshotter",
        "native",
        ref,
      ]);
    },
    expectContent,
    async expectImage(image, layout, namespace = "first") {
      await expectContent(image.manifest.digest, image.manifestBytes, namespace);
      for (const digest of [image.config, ...image.layers]) {
        await expectContent(digest, await readBlob(layout, digest), namespace);
      }
    },
  };
}

/** GETs a URL, hashing the body as it streams; `onFirstChunk` runs when the first bytes arrive. */
async function hashUrl(
  url: string,
  onFirstChunk?: () => Promise<void>,
): Promise<{ status: number; digest: string; size: number }> {
  const response = await fetch(url);
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of response.body ?? []) {
    if (size === 0 && onFirstChunk) await onFirstChunk();
    hash.update(chunk);
    size += chunk.length;
  }
  return { status: response.status, digest: `sha256:${hash.digest("hex")}`, size };
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

function describe(requests: RequestLine[]): string {
  return requests.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ""} ${r.status}`)
    .join(", ");
}
