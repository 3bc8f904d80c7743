// Unit tests of the auth and TLS flags of src/config.ts: modes, environment, consistency errors.

import { parseCommand } from "../../src/config.ts";
import { assert, assertEquals, assertMatch, runMain } from "../helpers.ts";

function serve(args: string[], env: Record<string, string> = {}) {
  const result = parseCommand(args, env);
  if (result.kind !== "serve") throw new Error(`expected serve, got ${JSON.stringify(result)}`);
  return result.config;
}

function error(args: string[], env: Record<string, string> = {}): string {
  const result = parseCommand(args, env);
  if (result.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(result)}`);
  assert(!result.message.includes("\n"), "one line");
  return result.message;
}

Deno.test("config auth: modes from flags and environment", () => {
  assertEquals(serve([]).auth, "none");
  const basic = serve(["--htpasswd", "/etc/registry/htpasswd"]);
  assertEquals([basic.auth, basic.htpasswd], ["basic", "/etc/registry/htpasswd"]);
  assertEquals(serve([], { REGISTRY_HTPASSWD: "h" }).auth, "basic");
  const token = serve(["--auth", "token", "--htpasswd", "h", "--token-key", "k.pem"]);
  assertEquals([token.auth, token.tokenKey], ["token", "k.pem"]);
  assertEquals(serve([], { REGISTRY_AUTH: "token", REGISTRY_HTPASSWD: "h" }).auth, "token");
  const external = serve([
    "--token-realm=https://auth.example/token",
    "--token-issuer=iss",
    "--token-service=svc",
    "--token-jwks=https://auth.example/jwks.json",
  ]);
  assertEquals(external.auth, "token", "an external server implies token mode");
  const policy = serve(["--htpasswd", "h", "--access-policy", "p.json"], {
    REGISTRY_TLS_CERT: "c.pem",
    REGISTRY_TLS_KEY: "k.pem",
  });
  assertEquals([policy.accessPolicy, policy.tlsCert, policy.tlsKey], ["p.json", "c.pem", "k.pem"]);
});

Deno.test("config auth: inconsistent flags are one-line errors", () => {
  assertMatch(error(["--auth", "ldap"]), /invalid --auth: ldap/);
  assertMatch(error(["--auth", "basic"]), /needs --htpasswd/);
  assertMatch(error(["--auth", "token"]), /needs --htpasswd/);
  assertMatch(error(["--auth", "none", "--htpasswd", "h"]), /need auth/);
  assertMatch(error(["--access-policy", "p.json"]), /need auth/);
  assertMatch(error(["--htpasswd", "h", "--token-key", "k"]), /need --auth token/);
  assertMatch(error(["--tls-cert", "c.pem"]), /go together/);
  assertMatch(error(["--htpasswd", ""]), /--htpasswd cannot be empty/);
  assertMatch(
    error(["--auth", "token", "--token-jwks", "j.json"]),
    /needs --token-realm, --token-issuer and --token-service/,
  );
  assertMatch(
    error([
      "--auth=token",
      "--token-realm=auth.example",
      "--token-issuer=i",
      "--token-service=s",
      "--token-cert=c.pem",
    ]),
    /invalid --token-realm/,
  );
  assertMatch(
    error([
      "--auth=token",
      "--token-realm=https://a",
      "--token-issuer=i",
      "--token-service=s",
      "--token-cert=c.pem",
      "--token-jwks=j",
    ]),
    /not both/,
  );
});

Deno.test("config auth: start-time errors are one clear line and exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/htpasswd`,
      "# users\ncarol:$apr1$salt$0123456789abcdefghijkl\n",
    );
    const start = async (...args: string[]) => {
      const out = await runMain(["--storage", "memory", "--port", "0", ...args], {
        timeoutMs: 30_000,
      });
      return { code: out.code, stderr: out.stderr.trim() };
    };
    const bad = await start("--htpasswd", `${dir}/htpasswd`);
    assertEquals(bad.code, 1);
    assertEquals(
      bad.stderr,
      `error: htpasswd file ${dir}/htpasswd: line 2: the entry for "carol" is not a bcrypt hash (make it with htpasswd -B)`,
    );
    const tls = await start("--tls-cert", `${dir}/none.pem`, "--tls-key", `${dir}/none.key`);
    assertEquals(tls.code, 1);
    assertMatch(tls.stderr, /^error: TLS certificate .*none\.pem: [^\n]+$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config auth: --trusted-proxies from flag or environment, checked", () => {
  assertEquals(serve([]).trustedProxies, []);
  assertEquals(serve(["--trusted-proxies", "10.0.0.0/8, ::1"]).trustedProxies, [
    "10.0.0.0/8",
    "::1",
  ]);
  assertEquals(
    serve([], { REGISTRY_TRUSTED_PROXIES: "172.16.0.0/12" }).trustedProxies,
    ["172.16.0.0/12"],
  );
  assertMatch(
    error(["--trusted-proxies", "10.0.0.0/40"]),
    /^invalid --trusted-proxies: "10\.0\.0\.0\/40" is not an address range/,
  );
});
