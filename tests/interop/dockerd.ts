// A private Docker daemon for the interop suite (Debian's docker.io): its own containerd, data
// root, exec root, pid file and unix socket in a temp dir, no iptables, no bridge, vfs storage, so
// it never meets another daemon on the machine. Plus a tiny base image made from busybox-static
// (no Docker Hub here): `docker import` of a rootfs tar with a static busybox in it.

import { sendSignal } from "../helpers.ts";
import { IN_CI, runCommand, which } from "./helpers.ts";

/** Where Debian installs dockerd (/usr/sbin is not on every PATH). */
function findBin(bin: string): string | undefined {
  return which(bin) ?? ["/usr/sbin", "/sbin", "/usr/bin"].map((d) => `${d}/${bin}`).find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/** True when the ELF file at `path` needs no dynamic loader (no PT_INTERP program header). */
export function isStaticElf(path: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch {
    return false;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elf64le = bytes.length > 64 && view.getUint32(0) === 0x7f454c46 && bytes[4] === 2 &&
    bytes[5] === 1;
  if (!elf64le) return false;
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    if (view.getUint32(phoff + i * phentsize, true) === 3) return false; // PT_INTERP
  }
  return true;
}

/** The static busybox to build the base image from, or undefined. */
export function staticBusybox(): string | undefined {
  const path = findBin("busybox");
  return path && isStaticElf(path) ? path : undefined;
}

/** Why a private daemon cannot run here (naming the Debian package), or undefined. */
export function dockerDaemonProblem(): string | undefined {
  const problems: string[] = [];
  for (const [bin, pkg] of [["dockerd", "docker.io"], ["docker", "docker.io"]] as const) {
    if (!findBin(bin)) problems.push(`${bin} not found (install Debian package ${pkg})`);
  }
  if (!staticBusybox()) {
    problems.push("no statically linked busybox (install Debian package busybox-static)");
  }
  if (Deno.uid() !== 0) problems.push("dockerd needs root");
  return problems.length ? problems.join("; ") : undefined;
}

const warned = new Set<string>();

/**
 * The `ignore` option of a test that needs the daemon: true (skip, with a message naming the
 * Debian package) when it cannot run here; never under CI=true, where the test fails instead.
 */
export function skipWithoutDaemon(caseName: string): boolean {
  const problem = dockerDaemonProblem();
  if (!problem || IN_CI) return false;
  const msg = `interop: SKIPPING "${caseName}": ${problem}`;
  if (!warned.has(msg)) console.warn(msg);
  warned.add(msg);
  return true;
}

export interface DockerDaemon extends AsyncDisposable {
  /** `unix://…/docker.sock`, for DOCKER_HOST. */
  host: string;
  /** DOCKER_HOST and the legacy builder (no buildx here). */
  env: Record<string, string>;
  /** Its log so far (stdout and stderr). */
  log(): string;
  stop(): Promise<void>;
}

/** Starts dockerd under `dir` and waits (up to 60 s) until it answers `docker version`. */
export async function startDockerDaemon(dir: string): Promise<DockerDaemon> {
  const problem = dockerDaemonProblem();
  if (problem) throw new Error(`cannot start a docker daemon: ${problem}`);
  await Deno.mkdir(`${dir}/exec`, { recursive: true });
  await Deno.mkdir(`${dir}/root`, { recursive: true });
  await Deno.writeTextFile(`${dir}/daemon.json`, "{}\n"); // not the machine's /etc/docker one
  const sock = `${dir}/docker.sock`;
  const host = `unix://${sock}`;
  // dockerd writes its ID key to /etc/docker/key.json whatever its flags: remove it after if new.
  const keyFile = "/etc/docker/key.json";
  const keyExisted = await Deno.stat(keyFile).then(() => true, () => false);
  const logFile = await Deno.open(`${dir}/dockerd.log`, { write: true, create: true });
  const child = new Deno.Command(findBin("dockerd")!, {
    args: [
      "--iptables=false",
      "--ip6tables=false",
      "--bridge=none",
      "--storage-driver=vfs",
      `--config-file=${dir}/daemon.json`,
      `--data-root=${dir}/root`,
      `--exec-root=${dir}/exec`,
      `--pidfile=${dir}/docker.pid`,
      `--host=${host}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  const decoder = () => new TextDecoderStream();
  const pump = (s: ReadableStream<Uint8Array>) =>
    s.pipeThrough(decoder()).pipeTo(
      new WritableStream({
        write(c) {
          chunks.push(c);
          logFile.write(new TextEncoder().encode(c)).catch(() => {});
        },
      }),
    ).catch(() => {});
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.finally(() => exited = true);
  const log = () => chunks.join("");
  const env = { DOCKER_HOST: host, DOCKER_BUILDKIT: "0" };

  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      if (!exited) sendSignal(child, "SIGTERM");
      const timer = setTimeout(() => !exited && sendSignal(child, "SIGKILL"), 30_000);
      await status;
      clearTimeout(timer);
      await pumps;
      logFile.close();
      if (!keyExisted) await Deno.remove(keyFile).catch(() => {});
    })();

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`dockerd exited before answering:\n${log().slice(-6000)}`);
    }
    const ok = await runCommand(["docker", "version", "--format", "{{.Server.Version}}"], {
      env,
      okCodes: [0, 1],
      timeoutMs: 10_000,
    }).then((r) => r.code === 0, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not answer within 60 s:\n${log().slice(-6000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { host, env, log, stop, [Symbol.asyncDispose]: stop };
}

/**
 * A rootfs tar holding a static busybox as /bin/busybox and the applets a test image uses, for
 * `docker import` / `podman import`. Made with tar(1), so owners are root in the archive.
 */
export async function busyboxRootfsTar(dir: string): Promise<string> {
  const busybox = staticBusybox();
  if (!busybox) throw new Error("no statically linked busybox (install busybox-static)");
  const root = `${dir}/rootfs`;
  await Deno.mkdir(`${root}/bin`, { recursive: true });
  await Deno.mkdir(`${root}/tmp`, { recursive: true });
  await Deno.copyFile(busybox, `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);
  for (const applet of ["sh", "echo", "cat", "ls", "sha256sum", "true"]) {
    await Deno.symlink("busybox", `${root}/bin/${applet}`);
  }
  const tar = `${dir}/rootfs.tar`;
  await runCommand([
    "tar",
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-C",
    root,
    "-cf",
    tar,
    ".",
  ]);
  return tar;
}
