// Unit tests of --redis, --redis-lease, --s3-redirect and --s3-redirect-min in src/config.ts:
// defaults (redirects on for AWS only), environment, and one-line errors that never echo secrets.

import { type Config, parseCommand } from "../src/config.ts";
import { assert, assertEquals, assertMatch } from "./helpers.ts";

function configOf(args: string[], env: Record<string, string> = {}): Config {
  const result = parseCommand(args, env);
  if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
  return result.config;
}

function errorOf(args: string[], env: Record<string, string> = {}): string {
  const result = parseCommand(args, env);
  if (result.kind !== "error") throw new Error(`expected error, got ${JSON.stringify(result)}`);
  assert(!result.message.includes("\n"), "the error is one line");
  return result.message;
}

const KEYS = ["--s3-access-key", "AK", "--s3-secret-key", "SK", "--s3-bucket", "reg"];
const CEPH = ["--storage", "s3", "--s3-endpoint", "http://127.0.0.1:7480", ...KEYS];
const AWS = ["--storage", "s3", ...KEYS];

Deno.test("config redis: the URL and lease, from flags or the environment", () => {
  assertEquals(configOf([]).redis, undefined);
  assertEquals(configOf(["--redis", "redis://u:p@10.0.0.5:6379/2"]).redis, {
    url: "redis://u:p@10.0.0.5:6379/2",
    lease: 30_000,
  });
  assertEquals(
    configOf([], { REGISTRY_REDIS: "rediss://cache:6380", REGISTRY_REDIS_LEASE: "10s" }).redis,
    { url: "rediss://cache:6380", lease: 10_000 },
  );
});

Deno.test("config redis: bad values are one line, without the password", () => {
  const message = errorOf(["--redis", "http://user:hunter2@cache:6379"]);
  assertMatch(message, /^invalid --redis/);
  assert(!message.includes("hunter2"), message);
  assertMatch(errorOf(["--redis", "redis://cache", "--redis-lease", "10"]), /--redis-lease/);
  assertMatch(errorOf(["--redis-lease", "10s"]), /needs --redis/);
});

Deno.test("config redirect: on by default for AWS, off for an endpoint of one's own", () => {
  assertEquals(configOf(AWS).s3Redirect, { minSize: 1024 * 1024 });
  assertEquals(configOf(CEPH).s3Redirect, undefined);
  assertEquals(configOf([...CEPH, "--s3-redirect"]).s3Redirect, { minSize: 1024 * 1024 });
  assertEquals(configOf(AWS, { REGISTRY_S3_REDIRECT: "false" }).s3Redirect, undefined);
  assertEquals(configOf([...AWS, "--s3-redirect-min", "4M"]).s3Redirect, {
    minSize: 4 * 1024 * 1024,
  });
  assertEquals(configOf([...CEPH, "--s3-redirect", "--s3-redirect-min", "0"]).s3Redirect, {
    minSize: 0,
  });
});

Deno.test("config redirect: bad values and misplaced flags are one line", () => {
  assertMatch(errorOf([...AWS, "--s3-redirect-min", "lots"]), /invalid --s3-redirect-min/);
  assertMatch(errorOf(["--s3-redirect"]), /needs --storage s3/);
  assertMatch(errorOf(AWS, { REGISTRY_S3_REDIRECT: "maybe" }), /REGISTRY_S3_REDIRECT/);
});
