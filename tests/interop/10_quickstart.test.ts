// Case 10: the README's quickstart, command for command. The fenced blocks after the
// `<!-- quickstart:server|docker|podman -->` markers are read from README.md (so they cannot
// drift) and run as they are: the server command in the repository root, each client line through
// `sh -c`. Only the environment differs from a newcomer's: the registry binds 127.0.0.1 on a free
// port (REGISTRY_HOST, REGISTRY_PORT; `localhost:5000` in the client lines becomes that port), its
// data dir is a temp dir, docker talks to a private dockerd, podman uses a private store, and the
// image called `alpine` is a busybox-static rootfs imported under that name (no Docker Hub here).

import { dirname } from "node:path";
import {
  assert,
  assertEquals,
  http,
  IN_CI,
  type RegistryProcess,
  REPO_ROOT,
  Session,
  skipUnless,
  text,
  which,
} from "./helpers.ts";
import {
  busyboxRootfsTar,
  skipWithoutDaemon,
  startDockerDaemon,
  staticBusybox,
} from "./dockerd.ts";

/** The command lines of the fenced `sh` block after `<!-- quickstart:<name> … -->`. */
function quickstartBlock(readme: string, name: string): string[] {
  const m = new RegExp(`<!-- quickstart:${name}\\b[^>]*-->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``)
    .exec(readme);
  assert(m, `README.md has no \`\`\`sh block after <!-- quickstart:${name} -->`);
  return m[1].split("\n").map((l) => l.replace(/(^|\s)#.*$/, "").trim()).filter(Boolean);
}

const README = await Deno.readTextFile(`${REPO_ROOT}README.md`);

/** Starts the README's server command (from the repository root) on a free loopback port. */
function startReadmeServer(s: Session): Promise<RegistryProcess> {
  const server = quickstartBlock(README, "server");
  assertEquals(server.length, 1, "the quickstart starts the registry with one command");
  assert(server[0].startsWith("deno task start"), `server command: ${server[0]}`);
  const path = `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`;
  return s.registry("fs", {
    kind: "simple",
    label: "readme",
    command: (dataDir) => ({
      args: ["sh", "-c", `exec ${server[0]}`],
      cwd: REPO_ROOT,
      env: {
        PATH: path,
        REGISTRY_HOST: "127.0.0.1",
        REGISTRY_PORT: "0",
        REGISTRY_DATA_DIR: dataDir,
      },
    }),
  });
}

/** Runs the client block line by line; checks the last line's `echo` came out of the container. */
async function runClientBlock(
  s: Session,
  reg: RegistryProcess,
  client: "docker" | "podman",
  env: Record<string, string>,
): Promise<void> {
  const lines = quickstartBlock(README, client);
  assert(lines.length >= 4, `the ${client} quickstart has its commands`);
  const port = reg.host.split(":")[1];
  let stdout = "";
  for (const line of lines) {
    assert(line.startsWith(`${client} `), `a ${client} command: ${line}`);
    assert(line.includes("localhost:5000"), `names localhost:5000: ${line}`);
    const command = line.replaceAll("localhost:5000", `localhost:${port}`);
    stdout = await s.step(
      command,
      async () => (await s.run(["sh", "-c", command], { env, timeoutMs: 180_000 })).stdout,
    );
  }
  const echoed = / echo (.+)$/.exec(lines.at(-1)!);
  assert(echoed, `the last command runs echo: ${lines.at(-1)}`);
  assertEquals(stdout, `${echoed[1]}\n`, "what the container printed");
  const catalog = await http("GET", `${reg.url}/v2/_catalog`, { want: [200] });
  assertEquals(JSON.parse(text(catalog.body)), { repositories: ["myrepo/alpine"] }, "catalog");
}

Deno.test({
  name: "interop 10: the README's quickstart with docker (a private dockerd)",
  ignore: skipUnless("interop 10 (docker)", ["docker"], { registry: false }) ||
    skipWithoutDaemon("interop 10 (docker)"),
  fn: async (t) => {
    await using s = await Session.open(t, ["docker"], { registry: false });
    const daemon = await s.step("start a private dockerd", () => startDockerDaemon(`${s.dir}/d`));
    await using _daemon = daemon;
    await s.step("an image called alpine (imported from busybox-static)", async () => {
      await s.docker(["import", await busyboxRootfsTar(s.dir), "alpine"], { env: daemon.env });
    });
    const reg = await s.step("README: start the registry", () => startReadmeServer(s));
    await runClientBlock(s, reg, "docker", daemon.env);
  },
});

const PODMAN_PROBLEM = !staticBusybox()
  ? "no statically linked busybox (install Debian package busybox-static)"
  : !which("runc")
  ? "runc not found (install Debian package runc)"
  : undefined;

/** Skip (with the package to install) when `podman run` cannot work here; never under CI. */
function skipPodman(): boolean {
  if (PODMAN_PROBLEM === undefined || IN_CI) return false;
  console.warn(`interop: SKIPPING "interop 10 (podman)": ${PODMAN_PROBLEM}`);
  return true;
}

Deno.test({
  name: "interop 10: the README's quickstart with podman",
  ignore: skipUnless("interop 10 (podman)", ["podman"], { registry: false }) || skipPodman(),
  fn: async (t) => {
    assert(PODMAN_PROBLEM === undefined, PODMAN_PROBLEM ?? "");
    await using s = await Session.open(t, ["podman"], { registry: false });
    // `podman run` in this sandbox: runc (crun refuses hybrid cgroups) and rlimits below the hard
    // limit (podman's default nofile of 1048576 is refused).
    await Deno.writeTextFile(
      s.env.CONTAINERS_CONF,
      `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\nruntime = "runc"\n` +
        `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n`,
    );
    await s.step("an image called alpine (imported from busybox-static)", async () => {
      await s.podman(["import", await busyboxRootfsTar(s.dir), "alpine"]);
    });
    const reg = await s.step("README: start the registry", () => startReadmeServer(s));
    await runClientBlock(s, reg, "podman", {});
  },
});
