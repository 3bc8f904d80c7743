// Unit tests of the --s3-* settings in src/config.ts: defaults, credentials from AWS_* variables,
// path-style rules, and the one-line errors for missing or wrong settings.

import { parseCommand } from "../src/config.ts";
import type { S3Options } from "../src/storage/s3/driver.ts";
import { assert, assertEquals, assertMatch } from "./helpers.ts";

function s3Of(args: string[], env: Record<string, string> = {}): S3Options | undefined {
  const result = parseCommand(args, env);
  if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
  assertEquals(result.config.storage, args.includes("s3") || env.REGISTRY_STORAGE ? "s3" : "fs");
  return result.config.s3;
}

function errorOf(args: string[], env: Record<string, string> = {}): string {
  const result = parseCommand(args, env);
  if (result.kind !== "error") throw new Error(`expected error, got ${JSON.stringify(result)}`);
  assert(!result.message.includes("\n"), "the error is one line");
  return result.message;
}

const KEYS = ["--s3-access-key", "AK", "--s3-secret-key", "SK"];

Deno.test("config s3: a custom endpoint, path-style by default", () => {
  assertEquals(
    s3Of([
      "--storage",
      "s3",
      "--s3-endpoint",
      "http://127.0.0.1:7480",
      "--s3-bucket",
      "reg",
      ...KEYS,
    ]),
    {
      endpoint: "http://127.0.0.1:7480",
      bucket: "reg",
      region: "us-east-1",
      prefix: "",
      pathStyle: true,
      accessKeyId: "AK",
      secretAccessKey: "SK",
    },
  );
});

Deno.test("config s3: AWS defaults, credentials and session token from the environment", () => {
  const s3 = s3Of(["--storage", "s3", "--s3-bucket", "reg", "--s3-region", "eu-west-1"], {
    AWS_ACCESS_KEY_ID: "AK",
    AWS_SECRET_ACCESS_KEY: "SK",
    AWS_SESSION_TOKEN: "TOKEN",
  });
  assertEquals(s3?.endpoint, "https://s3.eu-west-1.amazonaws.com");
  assertEquals([s3?.pathStyle, s3?.accessKeyId, s3?.sessionToken], [false, "AK", "TOKEN"]);
});

Deno.test("config s3: REGISTRY_S3_* variables, flags win, prefix slashes trimmed", () => {
  const s3 = s3Of(["--s3-prefix", "/team/registry/"], {
    REGISTRY_STORAGE: "s3",
    REGISTRY_S3_BUCKET: "reg",
    REGISTRY_S3_PREFIX: "ignored",
    REGISTRY_S3_ENDPOINT: "https://minio.example:9000",
    REGISTRY_S3_PATH_STYLE: "false",
    REGISTRY_S3_ACCESS_KEY: "AK",
    REGISTRY_S3_SECRET_KEY: "SK",
  });
  assertEquals([s3?.prefix, s3?.pathStyle, s3?.endpoint], [
    "team/registry",
    false,
    "https://minio.example:9000",
  ]);
  assertEquals(
    s3Of(["--storage", "s3", "--s3-bucket", "reg", "--s3-path-style", ...KEYS])?.pathStyle,
    true,
  );
  assertEquals(
    s3Of([
      "--storage",
      "s3",
      "--s3-endpoint",
      "http://h:1",
      "--s3-bucket",
      "reg",
      "--s3-virtual-host",
      ...KEYS,
    ])
      ?.pathStyle,
    false,
  );
});

Deno.test("config s3: missing or wrong settings are one-line errors", () => {
  assertMatch(errorOf(["--storage", "s3", ...KEYS]), /needs --s3-bucket/);
  assertMatch(errorOf(["--storage", "s3", "--s3-bucket", "reg"]), /needs credentials/);
  assertMatch(errorOf(["--storage", "s3", "--s3-bucket", "Bad_Bucket", ...KEYS]), /--s3-bucket/);
  assertMatch(
    errorOf(["--storage", "s3", "--s3-bucket", "reg", "--s3-endpoint", "ftp://x", ...KEYS]),
    /invalid --s3-endpoint/,
  );
  assertMatch(
    errorOf(["--storage", "s3", "--s3-bucket", "reg", "--s3-endpoint", "http://h/path", ...KEYS]),
    /invalid --s3-endpoint/,
  );
  assertMatch(
    errorOf(["--storage", "s3", "--s3-bucket", "reg", "--s3-prefix", "a/../b", ...KEYS]),
    /invalid --s3-prefix/,
  );
  assertMatch(
    errorOf([
      "--storage",
      "s3",
      "--s3-bucket",
      "reg",
      "--s3-path-style",
      "--s3-virtual-host",
      ...KEYS,
    ]),
    /exclude each other/,
  );
  assertMatch(errorOf(["--s3-bucket", "reg"]), /--s3-bucket needs --storage s3/);
  assertMatch(errorOf(["--storage", "s4"]), /expected fs, memory or s3/);
  // AWS_* variables alone do not demand S3 storage.
  assertEquals(s3Of([], { AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK" }), undefined);
});
