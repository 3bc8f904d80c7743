// Case 9: the original Simple Registry's own usage with a real Docker engine — `docker tag alpine
// localhost:5000/myrepo/alpine`, `docker push`, `docker pull` — against a private dockerd (see
// dockerd.ts). The image is built with `docker build` on a base imported from a busybox-static
// rootfs tar (no Docker Hub here), pushed (the engine streams each layer as one chunked PATCH),
// removed locally, pulled back and run with --network none.

import {
  assert,
  assertEquals,
  getManifest,
  hashRemoteBlob,
  type Manifest,
  type RegistryProcess,
  type RequestLine,
  Session,
  skipUnless,
  STORAGES,
  TARGET,
  text,
} from "./helpers.ts";
import {
  busyboxRootfsTar,
  type DockerDaemon,
  skipWithoutDaemon,
  startDockerDaemon,
} from "./dockerd.ts";

const CLIENTS = ["docker"] as const;
const DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json";
const REPO = "myrepo/alpine";
const EXPECTED_OUTPUT = "/payload.bin: OK\nbuilt\nhello from simple registry\n";

const DOCKERFILE = `FROM sr-base:1
COPY payload.bin /payload.bin
RUN sha256sum /payload.bin > /payload.sha256 && echo built > /built
CMD ["sh", "-c", "sha256sum -c /payload.sha256 && cat /built && echo hello from simple registry"]
`;

Deno.test({
  name: `interop 9 [${TARGET}/${
    STORAGES.join(",")
  }]: docker engine build, tag, push, rmi, pull, run`,
  ignore: skipUnless("interop 9", CLIENTS) || skipWithoutDaemon("interop 9"),
  fn: async (t) => {
    await using s = await Session.open(t, CLIENTS);
    const daemon: DockerDaemon = await s.step(
      "start a private dockerd (vfs, no bridge, no iptables)",
      () => startDockerDaemon(`${s.dir}/dockerd`),
    );
    await using _daemon = daemon;
    const docker = (args: string[], opts: { timeoutMs?: number } = {}) =>
      s.docker(args, { env: daemon.env, timeoutMs: opts.timeoutMs ?? 180_000 });
    const images = async () => (await docker(["images", "-q"])).stdout.trim();

    // Built once, saved to a tar, and loaded before each storage's push so that every pull below
    // starts from an empty image store.
    const saved = `${s.dir}/alpine.tar`;
    const built = await s.step(
      "docker import a busybox rootfs, docker build 'alpine'",
      async () => {
        const tar = await busyboxRootfsTar(s.dir);
        await docker(["import", tar, "sr-base:1"]);
        const ctx = `${s.dir}/ctx`;
        await Deno.mkdir(ctx);
        await Deno.writeTextFile(`${ctx}/Dockerfile`, DOCKERFILE);
        // 3 MiB of random bytes: a layer streamed in more than one read.
        const payload = new Uint8Array(3 << 20);
        for (let i = 0; i < payload.length; i += 65536) {
          crypto.getRandomValues(payload.subarray(i, i + 65536));
        }
        await Deno.writeFile(`${ctx}/payload.bin`, payload);
        await docker(["build", "--network", "none", "-t", "alpine", ctx]);
        const inspect = await imageInspect(docker, "alpine");
        await docker(["save", "-o", saved, "alpine"]);
        await docker(["rmi", "alpine", "sr-base:1"]);
        assertEquals(await images(), "", "the image store is empty after rmi");
        return inspect;
      },
    );
    assertEquals(built.layers.length, 3, "base, COPY and RUN layers");

    for (const storage of STORAGES) {
      const reg = await s.step(`[${storage}] start registry`, () => s.registry(storage));
      const port = reg.host.split(":")[1];
      const ref = `localhost:${port}/${REPO}`;

      const pushed = await s.step(
        `[${storage}] docker tag alpine ${ref}; docker push`,
        async () => {
          await docker(["load", "-i", saved]);
          await docker(["tag", "alpine", ref]);
          const mark = reg.mark();
          const out = (await docker(["push", ref])).stdout;
          const m = /digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(out);
          assert(m, `docker push printed no digest:\n${out}`);
          // The registry writes its log in batches: wait for the manifest PUT's line.
          const requests = await loggedRequests(
            reg,
            mark,
            (r) => r.method === "PUT" && r.path.endsWith("/manifests/latest"),
          );
          const count = (method: string, status: number, pathPart: string) =>
            requests.filter((r) =>
              r.method === method && r.status === status && r.path.includes(pathPart)
            ).length;
          // Three layers and the config, each streamed as one PATCH, then committed by a PUT.
          assertEquals(count("PATCH", 202, "/blobs/uploads/"), 4, "chunked PATCHes answered 202");
          assertEquals(count("PUT", 201, "/blobs/uploads/"), 4, "upload PUTs answered 201");
          assertEquals(count("PUT", 201, "/manifests/latest"), 1, "the manifest PUT");
          return { digest: m[1], size: Number(m[2]) };
        },
      );

      await s.step(`[${storage}] the registry holds exactly what docker pushed`, async () => {
        const got = await getManifest(reg.url, REPO, "latest", DOCKER_V2);
        assertEquals(got.digest, pushed.digest, "digest of the stored manifest");
        assertEquals(got.headerDigest, pushed.digest, "Docker-Content-Digest");
        assertEquals(got.bytes.length, pushed.size, "size docker printed");
        assertEquals(got.contentType, DOCKER_V2, "Content-Type");
        const manifest = JSON.parse(text(got.bytes)) as Manifest;
        assertEquals(manifest.config.digest, built.id, "config digest = image ID");
        for (const d of [manifest.config, ...manifest.layers]) {
          const blob = await hashRemoteBlob(reg.url, REPO, d.digest);
          assertEquals(blob, { digest: d.digest, size: d.size }, `blob ${d.digest}`);
        }
      });

      await s.step(`[${storage}] docker rmi: the local image store is empty`, async () => {
        await docker(["rmi", ref, "alpine"]);
        assertEquals(await images(), "", "docker images -q");
      });

      await s.step(`[${storage}] docker pull ${ref}`, async () => {
        const mark = reg.mark();
        const out = (await docker(["pull", ref])).stdout;
        assert(out.includes(`Digest: ${pushed.digest}`), `docker pull printed:\n${out}`);
        const isBlobGet = (r: RequestLine) =>
          r.method === "GET" && r.status === 200 && r.path.includes("/blobs/sha256:");
        const blobGets = (await loggedRequests(reg, mark, isBlobGet, 4)).filter(isBlobGet);
        assertEquals(blobGets.length, 4, "config and three layers downloaded");
        const inspect = await imageInspect(docker, ref);
        assertEquals(inspect, built, "image ID and layer diff IDs after the round trip");
      });

      await s.step(`[${storage}] docker run --network none ${ref}`, async () => {
        const out = await docker(["run", "--rm", "--network", "none", ref]);
        assertEquals(out.stdout, EXPECTED_OUTPUT, "the container's output");
        await docker(["rmi", ref]);
      });
    }
  },
});

/**
 * The requests logged since `mark`, once `count` of them match `until` (or after 10 s, when the
 * caller's assertion then shows what was logged).
 */
async function loggedRequests(
  reg: RegistryProcess,
  mark: number,
  until: (r: RequestLine) => boolean,
  count = 1,
): Promise<RequestLine[]> {
  const deadline = Date.now() + 10_000;
  while (reg.requestsSince(mark).filter(until).length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return reg.requestsSince(mark);
}

async function imageInspect(
  docker: (args: string[]) => Promise<{ stdout: string }>,
  ref: string,
): Promise<{ id: string; layers: string[] }> {
  const out = await docker(["image", "inspect", "--format", "{{json .}}", ref]);
  const image = JSON.parse(out.stdout) as { Id: string; RootFS: { Layers: string[] } };
  return { id: image.Id, layers: image.RootFS.Layers };
}
