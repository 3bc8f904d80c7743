// Owns setting auth up from the command line: reading its files, choosing Basic or Bearer mode.
// Implements distribution's htpasswd and token access controllers (docs/spec/auth/token.md, oauth.md).

import type { AuthFields, Config } from "../config.ts";
import { externalUrl } from "../http.ts";
import { log } from "../log.ts";
import { basicAuthorizer } from "./basic.ts";
import { bearerAuthorizer } from "./bearer.ts";
import { type BcryptPool, type BcryptPoolOptions, createBcryptPool } from "./bcrypt_pool.ts";
import { createPasswordCheck, type PasswordCheckOptions } from "./credentials.ts";
import { type HtpasswdOptions, loadHtpasswd } from "./htpasswd.ts";
import { createLimiter, type LimiterOptions } from "./limiter.ts";
import { DEFAULT_POLICY, parsePolicy, type Policy } from "./policy.ts";
import { tokenServer } from "./token_server.ts";
import {
  builtInVerifier,
  certificateKeys,
  createIssuer,
  createVerifier,
  jwksKeys,
  loadSigningKey,
  type TokenVerifier,
} from "./tokens.ts";
import type { Authorizer } from "./types.ts";

/** The auth settings of the command line (src/config.ts), with a policy written inline. */
export type AuthConfig = Pick<Config, AuthFields> & {
  sections?: Pick<Config["sections"], "access-policy">;
};

/** Auth with what a config reload changes: the access policy and the htpasswd entries. */
export interface Auth extends Authorizer {
  /**
   * Reads the policy and htpasswd files the new settings name; resolves to the switch that
   * puts them in force, or throws one clear Error (then nothing changes). A different auth
   * mode, htpasswd path or token setting needs a restart (src/settings/reload.ts says so).
   */
  prepareReload(config: AuthConfig): Promise<() => void>;
}

export interface AuthTuning {
  limits?: LimiterOptions;
  htpasswd?: HtpasswdOptions;
  bcrypt?: BcryptPoolOptions;
  /** A pool made by the caller (tests), used instead of one made from `bcrypt`. */
  pool?: BcryptPool;
  checks?: PasswordCheckOptions;
  tokenTtlSeconds?: number;
  now?: () => number;
}

const DEFAULT_TOKEN_SERVICE = "simple-registry";
const DEFAULT_TOKEN_ISSUER = "simple-registry";

/** Loads the files the config names; undefined when auth is off. Throws one clear Error. */
export async function createAuth(
  config: AuthConfig,
  tuning: AuthTuning = {},
): Promise<Auth | undefined> {
  if (config.auth === "none") return undefined;
  const path = config.htpasswd;
  // Workers start at the first password check, and stop when idle.
  const pool = path === undefined ? undefined : tuning.pool ?? createBcryptPool(tuning.bcrypt);
  const close = () => pool?.close();
  const htpasswd = pool && await loadHtpasswd(
    path!,
    { now: tuning.now, compare: pool.compare, ...tuning.htpasswd },
  ).catch((error) => {
    throw new Error(fileError("htpasswd", path!, error));
  });
  let policy = await loadPolicy(config);
  const fallback = config.tokenJwks !== undefined || config.tokenCert !== undefined
    ? undefined // behind an external server, only a policy given here adds to its grants
    : DEFAULT_POLICY;
  const current = () => policy ?? fallback;
  const prepareReload = async (next: AuthConfig) => {
    const [nextPolicy, nextUsers] = await Promise.all([
      loadPolicy(next),
      htpasswd?.prepareReload().catch((error) => {
        throw new Error(fileError("htpasswd", path!, error));
      }),
    ]);
    return () => {
      policy = nextPolicy;
      nextUsers?.();
    };
  };
  const limiter = createLimiter({ now: tuning.now, ...tuning.limits });
  const checkPassword = htpasswd && createPasswordCheck(htpasswd, limiter, tuning.checks);
  if (config.auth === "basic") {
    if (!checkPassword) throw new Error("basic auth needs --htpasswd FILE");
    return { ...basicAuthorizer(checkPassword, () => current()!), close, prepareReload };
  }

  const service = config.tokenService ?? DEFAULT_TOKEN_SERVICE;
  const issuerName = config.tokenIssuer ?? DEFAULT_TOKEN_ISSUER;
  if (config.tokenJwks !== undefined || config.tokenCert !== undefined) {
    const realm = config.tokenRealm;
    if (realm === undefined) throw new Error("an external token server needs --token-realm URL");
    let verifier: TokenVerifier;
    if (config.tokenJwks !== undefined) {
      const jwks = config.tokenJwks;
      const fromUrl = () => {
        try {
          return jwksKeys({ url: jwks });
        } catch (error) {
          throw new Error(fileError("JWKS", jwks, error));
        }
      };
      const key = /^https?:\/\//.test(jwks)
        ? fromUrl()
        : await readFile("JWKS", jwks, (json) => jwksKeys({ json }));
      verifier = createVerifier({ issuer: issuerName, service, key, now: tuning.now });
    } else {
      const { key, algorithms } = await readFile(
        "token certificate",
        config.tokenCert!,
        certificateKeys,
      );
      verifier = createVerifier({ issuer: issuerName, service, key, algorithms, now: tuning.now });
    }
    log.info("token auth with an external token server", {
      "auth.realm": realm,
      "auth.issuer": issuerName,
      "auth.service": service,
    });
    return {
      ...bearerAuthorizer({ realm: () => realm, service, verifier, policy: current }),
      prepareReload,
    };
  }

  if (!htpasswd || !checkPassword) {
    throw new Error("the built-in token server needs --htpasswd FILE");
  }
  const key = config.tokenKey === undefined
    ? await loadSigningKey()
    : await readFile("token key", config.tokenKey, (pem) => loadSigningKey(pem));
  if (config.tokenKey === undefined) {
    log.warn("token signing key generated at start; tokens will not outlive this process", {
      "auth.kid": key.kid,
    });
  }
  const issuer = createIssuer({
    key,
    issuer: issuerName,
    service,
    ttlSeconds: tuning.tokenTtlSeconds,
    now: tuning.now,
  });
  const verifier = builtInVerifier(key, issuerName, service, tuning.now);
  const grantFrom = () => current()!;
  const bearer = bearerAuthorizer({
    realm: (req) => config.tokenRealm ?? externalUrl(req, "/auth/token"),
    service,
    verifier,
    policy: grantFrom,
    tokenEndpoint: tokenServer({ issuer, htpasswd, checkPassword, policy: grantFrom, service }),
    issuer,
    checkPassword,
  });
  return { ...bearer, close, prepareReload };
}

/** The access policy a config names: its file, or its rules written inline in the config file. */
function loadPolicy(config: AuthConfig): Promise<Policy | undefined> {
  if (config.accessPolicy !== undefined) {
    return readFile("access policy", config.accessPolicy, parsePolicy);
  }
  return Promise.resolve(config.sections?.["access-policy"]);
}

async function readFile<T>(what: string, path: string, parse: (text: string) => T | Promise<T>) {
  try {
    return await parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new Error(fileError(what, path, error));
  }
}

function fileError(what: string, path: string, error: unknown): string {
  const message = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
  return message.startsWith(`${what} file`) ? message : `${what} file ${path}: ${message}`;
}
