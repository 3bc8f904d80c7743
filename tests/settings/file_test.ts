// The config file (src/settings/file.ts, load.ts): every flag set in the file acts as the flag does,
// flag > environment > file > default, and bad files are one line each naming file, line, column.

import { FLAGS, inFile, parseCommand, type ParsedCommand } from "../../src/config.ts";
import { readConfigFile } from "../../src/settings/file.ts";
import { loadCommand, type LoadedCommand } from "../../src/settings/load.ts";
import { assert, assertEquals, assertMatch, runMain, tempDir } from "../helpers.ts";

const S3 = [
  "--storage",
  "s3",
  "--s3-bucket",
  "bucket",
  "--s3-access-key",
  "k",
  "--s3-secret-key",
  "s",
];
const EXTERNAL = [
  "--auth",
  "token",
  "--token-realm",
  "https://auth.example.com/token",
  "--token-issuer",
  "iss",
  "--token-service",
  "svc",
];
/** Other flags a flag needs, without its own pair (`--s3-bucket` needs `--storage s3`…). */
const without = (args: string[], name: string) => {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? args : [...args.slice(0, at), ...args.slice(at + 2)];
};

/**
 * A value for every flag the file can set, and what else it needs. A new flag fails the test
 * below until it has a row here.
 */
const SAMPLES: Record<string, { value: string | true; with?: string[] }> = {
  "port": { value: "6000" },
  "host": { value: "127.0.0.1" },
  "verbose": { value: true },
  "storage": { value: "memory" },
  "data-dir": { value: "/srv/registry" },
  "no-delete": { value: true },
  "no-ui": { value: true },
  "header-timeout": { value: "10s" },
  "idle-timeout": { value: "2m" },
  "body-timeout": { value: "90s" },
  "max-connections": { value: "128" },
  "read-only": { value: true },
  "s3-endpoint": { value: "http://127.0.0.1:7480", with: S3 },
  "s3-bucket": { value: "images", with: without(S3, "s3-bucket") },
  "s3-region": { value: "eu-west-1", with: S3 },
  "s3-prefix": { value: "prod", with: S3 },
  "s3-path-style": { value: true, with: S3 },
  "s3-virtual-host": { value: true, with: [...S3, "--s3-endpoint", "http://127.0.0.1:7480"] },
  "s3-access-key": { value: "AKIA", with: without(S3, "s3-access-key") },
  "s3-secret-key": { value: "secret", with: without(S3, "s3-secret-key") },
  "s3-redirect": { value: true, with: [...S3, "--s3-endpoint", "http://127.0.0.1:7480"] },
  "s3-redirect-min": { value: "4M", with: [...S3, "--s3-redirect"] },
  "redis": { value: "redis://cache:6379/1" },
  "redis-lease": { value: "10s", with: ["--redis", "redis://cache:6379"] },
  "auth": { value: "token", with: ["--htpasswd", "users"] },
  "htpasswd": { value: "users.htpasswd" },
  "access-policy": { value: "policy.json", with: ["--htpasswd", "users"] },
  "token-key": { value: "key.pem", with: ["--auth", "token", "--htpasswd", "users"] },
  "token-realm": {
    value: "https://auth.example.com/token",
    with: [...without(EXTERNAL, "token-realm"), "--token-jwks", "jwks.json"],
  },
  "token-issuer": { value: "iss", with: ["--auth", "token", "--htpasswd", "users"] },
  "token-service": { value: "svc", with: ["--auth", "token", "--htpasswd", "users"] },
  "token-jwks": { value: "jwks.json", with: EXTERNAL },
  "token-cert": { value: "cert.pem", with: EXTERNAL },
  "tls-cert": { value: "tls.crt", with: ["--tls-key", "tls.key"] },
  "tls-key": { value: "tls.key", with: ["--tls-cert", "tls.crt"] },
  "trusted-proxies": { value: "10.0.0.0/8,192.168.1.1" },
  "gc-interval": { value: "1h" },
  "gc-untagged": { value: true },
  "gc-grace": { value: "30m" },
  "upload-ttl": { value: "2h" },
  "metrics-addr": { value: "127.0.0.1:9091" },
  "no-metrics": { value: true },
  "notify": { value: "http://hooks.example/registry" },
  "notify-config": { value: "notify.json" },
  "audit-log": { value: "/var/log/registry-audit.log" },
  "traceparent": { value: true },
  "proxy-config": { value: "mirror.json" },
  "proxy": { value: "hub=https://registry-1.docker.io" },
  "proxy-max-age": { value: "30d", with: ["--proxy", "hub=https://x.io", "--gc-interval", "1h"] },
  "proxy-max-bytes": {
    value: "200G",
    with: ["--proxy", "hub=https://x.io", "--gc-interval", "1h"],
  },
};

function withFile(args: string[], text: string, env: Record<string, string> = {}): ParsedCommand {
  const { settings, problems } = readConfigFile("registry.yaml", text);
  assertEquals(problems, [], text);
  return parseCommand(args, env, settings);
}

function configOf(result: ParsedCommand) {
  if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
  return result.config;
}

Deno.test("config file: every flag set in the file gives what the flag gives", () => {
  const missing = FLAGS.filter(inFile).map((f) => f.name).filter((name) => !(name in SAMPLES));
  assertEquals(missing, [], "add a sample for each new flag to SAMPLES");
  for (const [name, { value, with: others = [] }] of Object.entries(SAMPLES)) {
    const fromFlag = configOf(
      parseCommand([...others, ...value === true ? [`--${name}`] : [`--${name}`, value]], {}),
    );
    const fromFile = configOf(withFile(others, `${name}: ${JSON.stringify(value)}\n`));
    assertEquals(fromFile, fromFlag, `--${name}`);
    const base = parseCommand(others, {});
    if (base.kind === "serve") {
      assert(
        JSON.stringify(fromFlag) !== JSON.stringify(base.config),
        `--${name} changes a setting`,
      );
    }
  }
});

Deno.test("config file: a repeatable flag takes a list", () => {
  const file = "notify:\n  - http://a.example/hook\n  - http://b.example/hook\n";
  assertEquals(configOf(withFile([], file)).notify, [
    "http://a.example/hook",
    "http://b.example/hook",
  ]);
  assertEquals(configOf(withFile(["--notify", "http://c.example/hook"], file)).notify, [
    "http://c.example/hook",
  ], "the flag wins");
});

Deno.test("config file: flag > environment > file > default", () => {
  const file = "port: 7000\ngc-interval: 2h\nread-only: true\nverbose: false\n";
  const from = (args: string[], env: Record<string, string>) => configOf(withFile(args, file, env));
  assertEquals(configOf(parseCommand([], {})).port, 5000);
  assertEquals(from([], {}).port, 7000);
  assertEquals(from([], { REGISTRY_PORT: "7100" }).port, 7100);
  assertEquals(from(["--port", "7200"], { REGISTRY_PORT: "7100" }).port, 7200);
  assertEquals(from([], {}).gcInterval, 2 * 3_600_000);
  assertEquals(from([], { REGISTRY_GC_INTERVAL: "5m" }).gcInterval, 300_000);
  assertEquals(from([], {}).readOnly, true);
  assertEquals(from([], { REGISTRY_READ_ONLY: "false" }).readOnly, false);
  assertEquals(from([], { REGISTRY_VERBOSE: "1" }).verbose, true);
  assertEquals(from(["--verbose"], {}).verbose, true);
});

Deno.test("config file: JSON is YAML too; an inline access policy, and a path that wins over it", () => {
  const json = JSON.stringify({
    "htpasswd": "users",
    "access-policy": { rules: [{ users: ["*"], repositories: ["**"], actions: ["pull"] }] },
    "retention": [{ "repositories": "ci/**", "keep-last": 3 }],
  });
  const inline = configOf(withFile([], json));
  assertEquals(inline.auth, "basic");
  assertEquals(inline.sections["access-policy"]?.rules.length, 1);
  assertEquals(inline.sections.retention?.[0].keepLast, 3);
  const path = configOf(withFile(["--access-policy", "p.json"], json));
  assertEquals([path.accessPolicy, path.sections["access-policy"]], ["p.json", undefined]);
});

const FILES: Record<string, string> = {
  "unknown.yaml": "port: 5000\nprot: 5001\n",
  "type.yaml": 'port: 5000\nread-only: "yes"\n',
  "list.yaml": "gc-interval: [1h]\n",
  "bad.yaml": "port: 5000\nretention: [\n",
  "dup.yaml": "port: 1\nport: 2\n",
  "top.yaml": "- port: 1\n",
  "value.yaml": "storage: memory\ngc-grace: soon\n",
  "rules.yaml": [
    "retention:",
    "  - repositories: ci/**",
    "    keep-lst: 3",
    "  - repositories: [a/*, 7]",
    "    older-than: 3 days",
    "immutable-tags:",
    "  - repositories: '**'",
    "    tags: '(['",
    "quotas:",
    "  - repositories: team-a/**",
    "    max-bytes: lots",
    "",
  ].join("\n"),
  "good.yaml": "port: 5001\nretention:\n  - repositories: ci/**\n    keep-last: 3\n",
};
const read = (path: string) =>
  path in FILES ? Promise.resolve(FILES[path]) : Promise.reject(new Deno.errors.NotFound(path));

async function startError(path: string): Promise<string> {
  const result: LoadedCommand = await loadCommand(["--config", path], {}, read);
  if (result.kind !== "invalid" && result.kind !== "error") {
    throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  }
  assert(!result.message.includes("\n"), "one line");
  return result.message;
}

Deno.test("config file: each bad file stops the start with one line naming key and position", async () => {
  assertEquals(
    await startError("unknown.yaml"),
    `unknown.yaml:2:1: unknown key "prot" (did you mean "port"?); see --help for the keys`,
  );
  assertEquals(
    await startError("type.yaml"),
    `type.yaml:2:12: read-only: expected true or false, got the string "yes"`,
  );
  assertEquals(
    await startError("list.yaml"),
    "list.yaml:1:14: gc-interval: expected D, got a list",
  );
  assertMatch(await startError("bad.yaml"), /^bad\.yaml:\d+:\d+: .*\S$/);
  assertEquals(await startError("dup.yaml"), "dup.yaml:2:1: Map keys must be unique");
  assertEquals(
    await startError("top.yaml"),
    "top.yaml:1:1: expected a mapping of settings (key: value), got a list",
  );
  assertEquals(
    await startError("value.yaml"),
    "value.yaml:2:11: invalid gc-grace: soon (expected e.g. 30s, 1h, 24h)",
  );
  assertEquals(
    await startError("rules.yaml"),
    "rules.yaml:2:5: retention #1: the rule deletes nothing: give keep-last, older-than, " +
      "not-pulled-for, untagged-after or several (and 5 more: simple-registry config check " +
      "rules.yaml)",
  );
  assertEquals(
    await startError("missing.yaml"),
    "cannot read config file missing.yaml: no such file",
  );
});

Deno.test("config file: config check lists every problem, one line each", async () => {
  const checked = await loadCommand(["config", "check", "rules.yaml"], {}, read);
  assertEquals(checked, {
    kind: "checked",
    path: "rules.yaml",
    problems: [
      "rules.yaml:2:5: retention #1: the rule deletes nothing: give keep-last, older-than, " +
      "not-pulled-for, untagged-after or several",
      `rules.yaml:3:5: retention #1.keep-lst: unknown key "keep-lst" (expected repositories, ` +
      `keep-last, keep-tags, older-than, not-pulled-for, untagged-after, comment)`,
      "rules.yaml:4:25: retention #2.repositories #2: expected a non-empty string",
      "rules.yaml:5:17: retention #2.older-than: expected a duration such as 12h or 7d, " +
      `got the string "3 days"`,
      "rules.yaml:8:11: immutable-tags #1.tags: not a regular expression: " +
      "Invalid regular expression: /([/: Unterminated character class",
      `rules.yaml:11:16: quotas #1.max-bytes: expected a size such as 500M, 20G or 1T, ` +
      `got the string "lots"`,
    ],
  });
  assertEquals(await loadCommand(["config", "check", "good.yaml"], {}, read), {
    kind: "checked",
    path: "good.yaml",
    problems: [],
  });
});

Deno.test("main: config check exits 0 or 1; a bad file stops the start with one line, exit 1", async () => {
  await using dir = await tempDir("registry-config-");
  const good = `${dir.path}/good.yaml`;
  const bad = `${dir.path}/bad.yaml`;
  await Deno.writeTextFile(good, "storage: memory\nread-only: true\n");
  await Deno.writeTextFile(bad, "storage: memory\nretention:\n  - keep-last: 1\n");
  const ok = await runMain(["config", "check", good]);
  assertEquals([ok.code, ok.stdout.trim()], [0, `${good}: ok`]);
  const problems = await runMain(["config", "check", bad]);
  assertEquals(problems.code, 1);
  assertEquals(problems.stdout.trim().split("\n"), [
    `${bad}:3:5: retention #1: a rule needs "repositories" (globs such as team/** or "**")`,
  ]);
  const start = await runMain(["--config", bad, "--port", "0"]);
  assertEquals(start.code, 1);
  assertEquals(start.stderr.trim().split("\n"), [
    `error: ${bad}:3:5: retention #1: a rule needs "repositories" (globs such as team/** or "**")`,
  ]);
});

Deno.test("config file: a repeatable flag (proxy) takes a list", () => {
  const config = configOf(
    withFile([], "proxy:\n  - hub=https://registry-1.docker.io\n  - ghcr=https://ghcr.io\n"),
  );
  assertEquals(config.proxy, ["hub=https://registry-1.docker.io", "ghcr=https://ghcr.io"]);
});
