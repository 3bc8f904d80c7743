// End-to-end with real clients over TLS (a test CA made by openssl): skopeo and podman log in,
// push and pull in htpasswd Basic mode and token mode; wrong password, wrong repository, expired
// token, anonymous pull allowed by policy and anonymous push refused. Under CI=true a missing
// client fails the test; elsewhere it is skipped with the Debian package to install.

import { createHash } from "node:crypto";
import { assert, assertEquals, assertMatch } from "../helpers.ts";
import { type AuthServer, authServer } from "./fixtures.ts";
import { IN_CI, which } from "../interop/helpers.ts";

const TOOLS = { skopeo: "skopeo", podman: "podman", openssl: "openssl", tar: "tar" } as const;

const missing = Object.entries(TOOLS).filter(([bin]) => !which(bin)).map(([, pkg]) => pkg);
if (missing.length > 0 && !IN_CI) {
  console.warn(
    `auth clients tests skipped: install the Debian packages ${missing.join(", ")} ` +
      `(apt-get install -y ${missing.join(" ")})`,
  );
}

interface Run {
  ok: boolean;
  out: string;
}

/** Runs a command (bounded by a timeout); returns success and its stdout+stderr. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const output = await new Deno.Command(cmd, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: output.success, out: `${decode(output.stdout)}${decode(output.stderr)}` };
}

async function ok(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const result = await run(cmd, args, env);
  assert(result.ok, `${cmd} ${args.join(" ")} failed:\n${result.out}`);
  return result.out;
}

async function fails(
  cmd: string,
  args: string[],
  pattern: RegExp,
  env?: Record<string, string>,
): Promise<void> {
  const result = await run(cmd, args, env);
  assert(!result.ok, `${cmd} ${args.join(" ")} should fail:\n${result.out}`);
  assertMatch(result.out, pattern, `${cmd} ${args.join(" ")}`);
}

/** A CA and a server certificate for 127.0.0.1; the CA is in `certDir/ca.crt` for the clients. */
async function makeCertificates(dir: string) {
  const certDir = `${dir}/certs.d`;
  await Deno.mkdir(certDir);
  const ssl = (...args: string[]) => ok("openssl", args);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await ssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${certDir}/ca.crt`,
    "-subj",
    "/CN=simple-registry test CA",
    "-days",
    "2",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  await ssl(
    "req",
    ...ec,
    "-keyout",
    `${dir}/server.key`,
    "-out",
    `${dir}/server.csr`,
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await ssl(
    "x509",
    "-req",
    "-in",
    `${dir}/server.csr`,
    "-CA",
    `${certDir}/ca.crt`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/server.crt`,
    "-days",
    "2",
    "-extfile",
    `${dir}/server.ext`,
  );
  return {
    certDir,
    tls: {
      cert: await Deno.readTextFile(`${dir}/server.crt`),
      key: await Deno.readTextFile(`${dir}/server.key`),
    },
    ca: await Deno.readTextFile(`${certDir}/ca.crt`),
  };
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** A one-layer OCI image layout (tag `v1`) built by hand: oci-layout, index.json, blobs. */
async function makeImage(dir: string): Promise<{ layout: string; manifestDigest: string }> {
  const layout = `${dir}/image`;
  const root = `${dir}/rootfs`;
  await Deno.mkdir(`${layout}/blobs/sha256`, { recursive: true });
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${root}/hello.txt`, "hello from simple-registry auth tests\n");
  await ok("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-cf",
    `${dir}/layer.tar`,
    "-C",
    root,
    ".",
  ]);
  const blob = async (data: Uint8Array) => {
    const hex = sha256(data);
    await Deno.writeFile(`${layout}/blobs/sha256/${hex}`, data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layer = await blob(await Deno.readFile(`${dir}/layer.tar`));
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
  const config = await blob(new TextEncoder().encode(JSON.stringify({
    architecture: arch,
    os: "linux",
    config: { Cmd: ["/hello.txt"] },
    rootfs: { type: "layers", diff_ids: [layer.digest] },
  })));
  const manifestBytes = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
  }));
  const manifest = await blob(manifestBytes);
  await Deno.writeTextFile(`${layout}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await Deno.writeTextFile(
    `${layout}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": "v1" },
      }],
    }),
  );
  return { layout, manifestDigest: manifest.digest };
}

const USERS = { alice: "alice-secret", bob: "bob-secret" };
const POLICY = {
  rules: [
    { users: ["alice"], repositories: ["**"], actions: ["*"] },
    { users: ["bob"], repositories: ["team/*"], actions: ["pull"] },
    { users: ["anonymous"], repositories: ["public/**"], actions: ["pull"] },
    { users: ["*"], actions: ["catalog"] },
  ],
};

for (const mode of ["basic", "token"] as const) {
  Deno.test({
    name: `auth clients [${mode}]: skopeo and podman over TLS — login, push, pull, refusals`,
    ignore: missing.length > 0 && !IN_CI,
    fn: async (t) => {
      assertEquals(
        missing,
        [],
        `missing clients under CI (Debian packages: ${missing.join(", ")})`,
      );
      const work = await Deno.makeTempDir({ prefix: "registry-auth-clients-" });
      try {
        const certs = await makeCertificates(work);
        const image = await makeImage(work);
        await using s: AuthServer = await authServer({
          mode,
          users: USERS,
          policy: POLICY,
          tls: certs.tls,
        });
        const host = new URL(s.url).host;
        assertEquals(new URL(s.url).protocol, "https:");
        const authfile = `${work}/auth.json`;
        const env = { REGISTRY_AUTH_FILE: authfile, DOCKER_CONFIG: `${work}/docker` };
        const tls = ["--tls-verify=true", "--cert-dir", certs.certDir];
        const ref = (repo: string) => `docker://${host}/${repo}`;
        // `--authfile` on every skopeo command: copy and inspect do not read REGISTRY_AUTH_FILE.
        const sk = (
          command: string,
          ...args: string[]
        ) => [command, "--authfile", authfile, ...args];
        const skopeo = (command: string, ...args: string[]) =>
          ok("skopeo", sk(command, ...args), env);
        const refused = /denied|unauthorized|invalid username\/password|401|403/i;
        const layout = `oci:${image.layout}:v1`;
        const pushTls = ["--dest-cert-dir", certs.certDir];

        await t.step("plain fetch over TLS with the test CA", async () => {
          const client = Deno.createHttpClient({ caCerts: [certs.ca] });
          const res = await fetch(`${s.url}/v2/`, { client });
          await res.body?.cancel();
          client.close();
          assertEquals(res.status, 401);
        });

        await t.step("skopeo login: wrong password refused, right one accepted", async () => {
          await fails(
            "skopeo",
            sk("login", ...tls, "-u", "alice", "-p", "wrong", host),
            refused,
            env,
          );
          await skopeo("login", ...tls, "-u", "alice", "-p", USERS.alice, host);
        });

        await t.step(
          "skopeo copy (logged in) pushes; bob pulls it back with --src-creds",
          async () => {
            for (const repo of ["team/app:v1", "public/base:v1", "secret/x:v1"]) {
              await skopeo("copy", ...pushTls, layout, ref(repo));
            }
            const out = `${work}/pulled`;
            const bob = ["--src-creds", `bob:${USERS.bob}`, "--src-cert-dir", certs.certDir];
            await skopeo("copy", ...bob, ref("team/app:v1"), `oci:${out}:v1`);
            const index = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
            // skopeo compresses the tar layer on push, so compare with what the registry holds.
            const stored = await skopeo(
              "inspect",
              ...tls,
              "--format",
              "{{.Digest}}",
              ref("team/app:v1"),
            );
            assertEquals(index.manifests[0].digest, stored.trim());
          },
        );

        await t.step(
          "bob: push refused, wrong repository refused, wrong password refused",
          async () => {
            const bob = ["--dest-creds", `bob:${USERS.bob}`, ...pushTls];
            await fails("skopeo", sk("copy", ...bob, layout, ref("team/app:v2")), refused, env);
            const inspect = (creds: string, repo: string) =>
              fails("skopeo", sk("inspect", "--creds", creds, ...tls, ref(repo)), refused, env);
            await inspect(`bob:${USERS.bob}`, "secret/x:v1");
            await inspect("bob:wrong", "team/app:v1");
          },
        );

        await t.step("anonymous: pull allowed by policy, push refused", async () => {
          const raw = await skopeo("inspect", "--no-creds", ...tls, "--raw", ref("public/base:v1"));
          assertEquals(JSON.parse(raw).layers.length, 1);
          const inspect = sk("inspect", "--no-creds", ...tls, ref("team/app:v1"));
          await fails("skopeo", inspect, refused, env);
          const push = sk("copy", "--dest-no-creds", ...pushTls, layout, ref("public/base:v2"));
          await fails("skopeo", push, refused, env);
        });

        if (mode === "token") {
          await t.step(
            "expired token refused, fresh token accepted (--registry-token)",
            async () => {
              const access = [{ type: "repository", name: "team/app", actions: ["pull"] }];
              const expired = await s.auth.issuer!.issue("bob", access, -60);
              const inspect = (token: string) =>
                sk("inspect", "--registry-token", token, ...tls, "--raw", ref("team/app:v1"));
              await fails("skopeo", inspect(expired.token), /unauthorized|401|invalid/i, env);
              const fresh = await s.auth.issuer!.issue("bob", access);
              await ok("skopeo", inspect(fresh.token), env);
            },
          );
        }

        await t.step("podman login, pull, push, logout; bob's push refused", async () => {
          // podman refuses a runroot path longer than 50 characters: a short dir of its own.
          const store = await Deno.makeTempDir({ dir: "/tmp", prefix: "pm-" });
          try {
            const global = [
              ...["--root", `${store}/root`, "--runroot", `${store}/run`],
              ...["--tmpdir", `${store}/tmp`, "--storage-driver", "vfs"],
              ...["--cgroup-manager", "cgroupfs", "--events-backend", "none"],
            ];
            const podman = (...args: string[]) => ok("podman", [...global, ...args], env);
            await podman("login", ...tls, "-u", "alice", "-p", USERS.alice, host);
            await podman("pull", ...tls, `${host}/team/app:v1`);
            await podman("push", ...tls, `${host}/team/app:v1`, `${host}/team/pushed:v1`);
            await podman("logout", host);
            await podman("login", ...tls, "-u", "bob", "-p", USERS.bob, host);
            const push = [...global, "push", ...tls, `${host}/team/app:v1`, `${host}/team/bobs:v1`];
            await fails("podman", push, refused, env);
            await podman("logout", "--all");
          } finally {
            await Deno.remove(store, { recursive: true }).catch(() => {});
          }
          const pushed = await skopeo(
            "inspect",
            "--creds",
            `alice:${USERS.alice}`,
            ...tls,
            ref("team/pushed:v1"),
          );
          assertEquals(JSON.parse(pushed).Layers.length, 1);
        });
      } finally {
        await Deno.remove(work, { recursive: true }).catch(() => {});
      }
    },
  });
}
