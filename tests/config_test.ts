// Unit tests of src/config.ts parseCommand: defaults, REGISTRY_* fallback, flag over env, errors.
// Compares only the core fields, so flags added later do not break these tests.

import { type Config, envName, FLAGS, isLoopbackHost, parseCommand } from "../src/config.ts";
import { assert, assertEquals, assertMatch } from "./helpers.ts";

const CORE = ["port", "host", "verbose", "storage", "dataDir", "deleteEnabled"] as const;

function core(args: string[], env: Record<string, string> = {}): Partial<Config> {
  const result = parseCommand(args, env);
  if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
  return Object.fromEntries(CORE.map((k) => [k, result.config[k]])) as Partial<Config>;
}

function errorOf(args: string[], env: Record<string, string> = {}): string {
  const result = parseCommand(args, env);
  if (result.kind !== "error") throw new Error(`expected error, got ${JSON.stringify(result)}`);
  assert(!result.message.includes("\n"), "the error is one line");
  return result.message;
}

Deno.test("config: defaults", () => {
  assertEquals(core([]), {
    port: 5000,
    host: "0.0.0.0",
    verbose: false,
    storage: "fs",
    dataDir: "./data",
    deleteEnabled: true,
  });
});

Deno.test("config: every flag", () => {
  assertEquals(
    core([
      "--port",
      "6000",
      "--host=127.0.0.1",
      "--verbose",
      "--storage",
      "memory",
      "--data-dir",
      "/tmp/x",
      "--no-delete",
    ]),
    {
      port: 6000,
      host: "127.0.0.1",
      verbose: true,
      storage: "memory",
      dataDir: "/tmp/x",
      deleteEnabled: false,
    },
  );
  assertEquals(core(["--port", "0"]).port, 0);
  assertEquals(core(["--port", "65535"]).port, 65535);
});

Deno.test("config: environment fallback", () => {
  assertEquals(
    core([], {
      REGISTRY_PORT: "7000",
      REGISTRY_HOST: "::1",
      REGISTRY_VERBOSE: "true",
      REGISTRY_STORAGE: "memory",
      REGISTRY_DATA_DIR: "/srv/reg",
      REGISTRY_NO_DELETE: "1",
    }),
    {
      port: 7000,
      host: "::1",
      verbose: true,
      storage: "memory",
      dataDir: "/srv/reg",
      deleteEnabled: false,
    },
  );
  assertEquals(core([], { REGISTRY_VERBOSE: "false", REGISTRY_NO_DELETE: "no" }).verbose, false);
  assertEquals(core([], { REGISTRY_NO_DELETE: "no" }).deleteEnabled, true);
  assertEquals(core([], { UNRELATED: "x", PORT: "1" }).port, 5000);
});

Deno.test("config: a flag wins over the environment", () => {
  const env = { REGISTRY_PORT: "7000", REGISTRY_STORAGE: "memory", REGISTRY_DATA_DIR: "/env" };
  const c = core(["--port", "8000", "--storage", "fs", "--data-dir", "/flag"], env);
  assertEquals([c.port, c.storage, c.dataDir], [8000, "fs", "/flag"]);
});

Deno.test("config: bad values are errors", () => {
  for (const port of ["abc", "-1", "65536", "1.5", "", "99999999"]) {
    assertMatch(errorOf([`--port=${port}`]), /port/, port);
  }
  assertMatch(errorOf([], { REGISTRY_PORT: "x" }), /port/);
  assertMatch(errorOf(["--storage", "s3x"]), /storage/);
  assertMatch(errorOf([], { REGISTRY_STORAGE: "disk" }), /storage/);
  errorOf(["--data-dir="]);
});

Deno.test("config: unknown flags, positionals and missing values are errors", () => {
  assertMatch(errorOf(["--bogus"]), /bogus/);
  errorOf(["serve"]);
  errorOf(["--port"]);
  errorOf(["-x"]);
});

Deno.test("config: --help and --version", () => {
  assertEquals(parseCommand(["--help"], {}), { kind: "help" });
  assertEquals(parseCommand(["--version"], {}), { kind: "version" });
  assertEquals(parseCommand(["--port", "1", "--help"], {}).kind, "help");
});

Deno.test("config: the README's flag table lists every flag and its environment variable", () => {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  const section = readme.slice(
    readme.indexOf("## Flags"),
    readme.indexOf("\n## ", readme.indexOf("## Flags") + 1),
  );
  for (const flag of FLAGS) {
    assert(section.includes(`\`--${flag.name}`), `README lists --${flag.name}`);
    const env = envName(flag);
    if (env) assert(section.includes(`\`${env}`), `README lists ${env} for --${flag.name}`);
  }
});

Deno.test("config: isLoopbackHost — 127.0.0.0/8, ::1 and localhost only", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"]) {
    assert(isLoopbackHost(host), host);
  }
  for (const host of ["0.0.0.0", "::", "[::]", "10.0.0.1", "192.168.1.2", "128.0.0.1", "example"]) {
    assert(!isLoopbackHost(host), host);
  }
});

Deno.test("config: connection timeouts and cap (defaults, flags, environment, errors)", () => {
  const limits = (args: string[], env: Record<string, string> = {}) => {
    const result = parseCommand(args, env);
    if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
    const { headerTimeout, idleTimeout, bodyTimeout, maxConnections } = result.config;
    return { headerTimeout, idleTimeout, bodyTimeout, maxConnections };
  };
  assertEquals(limits([]), {
    headerTimeout: 30_000,
    idleTimeout: 60_000,
    bodyTimeout: 60_000,
    maxConnections: undefined,
  });
  assertEquals(
    limits(["--header-timeout", "5s", "--idle-timeout", "0", "--max-connections", "100"], {
      REGISTRY_BODY_TIMEOUT: "2m",
      REGISTRY_MAX_CONNECTIONS: "7",
    }),
    { headerTimeout: 5_000, idleTimeout: 0, bodyTimeout: 120_000, maxConnections: 100 },
  );
  assertMatch(errorOf(["--body-timeout", "soon"]), /invalid --body-timeout/);
  for (const bad of ["0", "-1", "1.5", "many"]) {
    assertMatch(errorOf([`--max-connections=${bad}`]), /invalid --max-connections/);
  }
});

Deno.test("config: operations flags (metrics, webhooks, audit log, tracing)", () => {
  const serve = (args: string[], env: Record<string, string> = {}) => {
    const result = parseCommand(args, env);
    if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
    const { metrics, metricsAddr, notify, notifyConfig, auditLog, traceparent } = result.config;
    return { metrics, metricsAddr, notify, notifyConfig, auditLog, traceparent };
  };
  assertEquals(serve([]), {
    metrics: true,
    metricsAddr: undefined,
    notify: [],
    notifyConfig: undefined,
    auditLog: undefined,
    traceparent: false,
  });
  assertEquals(
    serve([
      "--metrics-addr",
      "127.0.0.1:9091",
      "--notify",
      "http://a/hook",
      "--notify=http://b/hook",
      "--notify-config",
      "n.json",
      "--audit-log",
      "/var/log/audit.log",
      "--traceparent",
    ]),
    {
      metrics: true,
      metricsAddr: { hostname: "127.0.0.1", port: 9091 },
      notify: ["http://a/hook", "http://b/hook"],
      notifyConfig: "n.json",
      auditLog: "/var/log/audit.log",
      traceparent: true,
    },
  );
  assertEquals(serve(["--metrics-addr", "[::1]:9091"]).metricsAddr, {
    hostname: "::1",
    port: 9091,
  });
  assertEquals(serve(["--metrics-addr", ":9091"]).metricsAddr, { hostname: "0.0.0.0", port: 9091 });
  assertEquals(serve(["--no-metrics"]).metrics, false);
  const env = { REGISTRY_NOTIFY: " http://a/x  http://b/y ", REGISTRY_TRACEPARENT: "1" };
  assertEquals([serve([], env).notify, serve([], env).traceparent], [
    ["http://a/x", "http://b/y"],
    true,
  ]);
  assertEquals(serve(["--notify", "http://c"], env).notify, ["http://c"], "the flag wins");
  assertMatch(errorOf(["--metrics-addr", "9091"]), /invalid --metrics-addr/);
  assertMatch(errorOf(["--metrics-addr", "h:70000"]), /invalid --metrics-addr/);
  assertMatch(errorOf(["--metrics-addr", "h:1", "--no-metrics"]), /exclude each other/);
  assertMatch(errorOf(["--audit-log="]), /--audit-log cannot be empty/);
});

Deno.test("config: the mirror's flags", () => {
  const serve = (args: string[], env: Record<string, string> = {}) => {
    const result = parseCommand(args, env);
    if (result.kind !== "serve") throw new Error(JSON.stringify(result));
    return result.config;
  };
  const config = serve([
    "--proxy",
    "hub=https://registry-1.docker.io",
    "--proxy",
    "ghcr=https://ghcr.io",
    "--proxy-config",
    "/etc/mirror.json",
    "--proxy-max-age",
    "7d",
    "--proxy-max-bytes",
    "20G",
    "--gc-interval",
    "1h",
  ]);
  assertEquals(config.proxy, ["hub=https://registry-1.docker.io", "ghcr=https://ghcr.io"]);
  assertEquals(config.proxyConfig, "/etc/mirror.json");
  assertEquals(config.proxyMaxAge, 7 * 24 * 3_600_000);
  assertEquals(config.proxyMaxBytes, 20 * 1024 ** 3);
  // The environment: several upstreams separated by spaces.
  assertEquals(serve([], { REGISTRY_PROXY: "a=http://a.test b=http://b.test" }).proxy, [
    "a=http://a.test",
    "b=http://b.test",
  ]);
  assertEquals(serve([]).proxy, []);
  assertEquals(
    serve(["--proxy-max-bytes", "1048576", "--proxy", "a=http://a", "--gc-interval", "1h"])
      .proxyMaxBytes,
    1048576,
  );

  assertMatch(errorOf(["--proxy", "hub"]), /invalid --proxy hub: expected NAME=URL/);
  assertMatch(errorOf(["--proxy", "hub=ftp://x"]), /invalid --proxy hub=ftp:\/\/x/);
  assertMatch(errorOf(["--proxy-config", ""]), /--proxy-config cannot be empty/);
  assertMatch(
    errorOf(["--proxy", "a=http://a", "--proxy-max-age", "soon", "--gc-interval", "1h"]),
    /invalid --proxy-max-age: soon/,
  );
  assertMatch(
    errorOf(["--proxy", "a=http://a", "--proxy-max-bytes", "lots", "--gc-interval", "1h"]),
    /invalid --proxy-max-bytes: lots/,
  );
  assertMatch(
    errorOf(["--proxy-max-age", "1d", "--gc-interval", "1h"]),
    /need --proxy or --proxy-config/,
  );
  assertMatch(errorOf(["--proxy", "a=http://a", "--proxy-max-bytes", "1G"]), /add --gc-interval/);
  // The offline gc command enforces them in its one pass.
  assertEquals(
    parseCommand(["gc", "--proxy", "a=http://a", "--proxy-max-age", "1d"], {}).kind,
    "gc",
  );
});
