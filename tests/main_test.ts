// main.ts as a subprocess: usage errors exit 2 with one line + usage on stderr, --help and
// --version exit 0, and SIGTERM/SIGINT stop a serving registry with exit 0.

import { VERSION } from "../src/config.ts";
import { assert, assertEquals, assertMatch, runMain, spawnRegistry, tempDir } from "./helpers.ts";
import { htpasswdLine } from "./auth/fixtures.ts";

const run = (args: string[], env: Record<string, string> = {}) => runMain(args, { env });

Deno.test("main: an unknown flag exits 2 with a one-line error and the usage on stderr", async () => {
  const { code, stdout, stderr } = await run(["--bogus"]);
  assertEquals(code, 2);
  assertEquals(stdout, "");
  const [first, ...rest] = stderr.trimEnd().split("\n");
  assertMatch(first, /^error: .*bogus/);
  assertMatch(rest.join("\n"), /usage:/);
  assertMatch(rest.join("\n"), /--port/);
});

Deno.test("main: bad values exit 2 (flags and environment)", async () => {
  for (
    const [args, env] of [
      [["--port", "nope"], {}],
      [["--storage", "tape"], {}],
      [[], { REGISTRY_PORT: "70000" }],
    ] as const
  ) {
    const { code, stderr } = await run([...args], env);
    assertEquals(code, 2, `${args.join(" ")} ${JSON.stringify(env)}`);
    assertMatch(stderr.split("\n")[0], /^error: /);
  }
});

Deno.test("main: --help prints the usage and exits 0", async () => {
  const { code, stdout } = await run(["--help"]);
  assertEquals(code, 0);
  assertMatch(stdout, /^usage:/);
  for (const flag of ["--port", "--host", "--verbose", "--storage", "--data-dir", "--no-delete"]) {
    assert(stdout.includes(flag), `usage mentions ${flag}`);
  }
});

Deno.test("main: --version prints the version and exits 0", async () => {
  const { code, stdout } = await run(["--version"]);
  assertEquals(code, 0);
  assertEquals(stdout.trim(), `simple-registry ${VERSION}`);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`main: ${signal} stops a serving registry with exit 0`, async () => {
    await using dir = await tempDir("registry-main-");
    const registry = await spawnRegistry(["--data-dir", dir.path]);
    const res = await fetch(`${registry.url}/v2/`);
    assertEquals([res.status, await res.json()], [200, {}]);
    const status = await registry.stop(signal);
    assertEquals(status.code, 0);
    assert(registry.lines.some((l) => l.includes('"listening"')), "logged listening");
    assert(registry.lines.some((l) => l.includes('"request"')), "logged the request");
    await assertRefused(registry.url);
  });
}

async function assertRefused(url: string) {
  try {
    const res = await fetch(`${url}/v2/`);
    await res.body?.cancel();
  } catch {
    return;
  }
  throw new Error("the server still answers after exiting");
}

Deno.test("main: no auth on a non-loopback --host logs one warning; loopback or auth does not", async () => {
  await using dir = await tempDir("registry-main-");
  const warnings = async (args: string[]) => {
    const registry = await spawnRegistry(["--data-dir", dir.path, ...args]);
    await (await fetch(`${registry.url}/v2/`)).body?.cancel();
    await registry.stop();
    return registry.lines.filter((l) => l.includes("anyone who can reach it may push and delete"));
  };
  const open = await warnings(["--host", "0.0.0.0"]);
  assertEquals(open.length, 1, "one warning line for 0.0.0.0 without auth");
  const record = JSON.parse(open[0]);
  assertEquals([record.level, record["server.address"]], ["WARN", "0.0.0.0"]);
  assertEquals(await warnings([]), [], "no warning on 127.0.0.1");
  const htpasswd = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(htpasswd, `${htpasswdLine("alice", "secret")}\n`);
  assertEquals(await warnings(["--host", "0.0.0.0", "--htpasswd", htpasswd]), [], "none with auth");
});

Deno.test("main: a bad --proxy-config exits 1 with one line naming the field", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/mirror.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({ upstreams: [{ name: "hub", url: "docker.io" }] }),
  );
  const { code, stderr } = await run([
    "--storage",
    "memory",
    "--port",
    "0",
    "--proxy-config",
    file,
  ]);
  assertEquals(code, 1);
  assertEquals(
    stderr.trimEnd(),
    `error: proxy config ${file}: upstreams[0].url: "docker.io" must be http(s)://host[:port] (the registry's origin)`,
  );
});
