// Shared machinery of the auth tests: a server with htpasswd users and a policy in a temp dir,
// Basic/Bearer headers, and tokens fetched from the built-in token endpoint.

import bcrypt from "bcryptjs";
import { type AuthConfig, type AuthTuning, createAuth } from "../../src/auth/auth.ts";
import type { Authorizer } from "../../src/auth/types.ts";
import type { RedisSettings } from "../../src/redis/shared.ts";
import { type RunningServer, startServer, type Tls } from "../../src/server.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { assertEquals, type RegistryClient, registryClient, tempDir } from "../helpers.ts";

/** The users and policy of the token-mode tests (bearer_test.ts, token_server_test.ts). */
export const TOKEN_USERS = { alice: "alice-pw", bob: "bob-pw" };
export const TOKEN_POLICY = {
  rules: [
    { users: ["alice"], repositories: ["**"], actions: ["*"] },
    { users: ["bob"], repositories: ["team/*"], actions: ["pull"] },
    { users: ["anonymous"], repositories: ["public/**"], actions: ["pull"] },
    { users: ["*"], actions: ["catalog"] },
  ],
};

/** An `htpasswd -B` line: bcrypt cost 5 with Apache's `$2y$` prefix. */
export function htpasswdLine(user: string, password: string): string {
  return `${user}:${bcrypt.hashSync(password, 5).replace(/^\$2[ab]\$/, "$2y$")}`;
}

export const basic = (user: string, password: string) => ({
  authorization: `Basic ${btoa(`${user}:${password}`)}`,
});
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface AuthServer extends AsyncDisposable {
  url: string;
  server: RunningServer;
  auth: Authorizer;
  driver: StorageDriver;
  dir: string;
  htpasswdPath: string;
  /** A registry client sending these headers on every request. */
  client(headers?: HeadersInit): RegistryClient;
}

export interface AuthServerOptions {
  mode: "basic" | "token";
  /** user → password */
  users: Record<string, string>;
  policy?: unknown;
  config?: Partial<AuthConfig>;
  tuning?: AuthTuning;
  tls?: Tls;
  driver?: StorageDriver;
  /** --trusted-proxies */
  trustedProxies?: string[];
  /** --redis (tests/redis_helpers.ts starts one). */
  redis?: RedisSettings;
}

export async function authServer(options: AuthServerOptions): Promise<AuthServer> {
  const dir = await tempDir("registry-auth-");
  const htpasswdPath = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(
    htpasswdPath,
    Object.entries(options.users).map(([u, p]) => htpasswdLine(u, p)).join("\n") + "\n",
  );
  let accessPolicy: string | undefined;
  if (options.policy !== undefined) {
    accessPolicy = `${dir.path}/policy.json`;
    await Deno.writeTextFile(accessPolicy, JSON.stringify(options.policy));
  }
  const auth = (await createAuth(
    { auth: options.mode, htpasswd: htpasswdPath, accessPolicy, ...options.config },
    options.tuning,
  ))!;
  const driver = options.driver ?? createMemoryDriver();
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver,
    auth,
    tls: options.tls,
    trustedProxies: options.trustedProxies,
    redis: options.redis,
  });
  return {
    url: server.url,
    server,
    auth,
    driver,
    dir: dir.path,
    htpasswdPath,
    client: (headers = {}) => registryClient(server.url, headers),
    async [Symbol.asyncDispose]() {
      await server.shutdown(2000);
      auth.close?.();
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** A token from the built-in endpoint (GET, Basic credentials when given). */
export async function fetchToken(
  url: string,
  scopes: string[],
  credentials?: [string, string],
): Promise<string> {
  const query = new URLSearchParams({ service: "simple-registry" });
  for (const scope of scopes) query.append("scope", scope);
  const response = await fetch(`${url}/auth/token?${query}`, {
    headers: credentials ? basic(...credentials) : {},
  });
  const body = await response.json();
  assertEquals(response.status, 200, `token: ${JSON.stringify(body)}`);
  return body.token;
}
