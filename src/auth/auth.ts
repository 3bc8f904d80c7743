// Owns the authorizer the app calls per request (Basic or Bearer), and the built-in token endpoint.
// Implements distribution's htpasswd and token access controllers (docs/spec/auth/token.md, oauth.md).

import type { AuthFields, Config } from "../config.ts";
import { RegistryError } from "../errors.ts";
import { isName, requireName } from "../grammar.ts";
import { type Context, externalUrl, json, readLimited } from "../http.ts";
import { log } from "../log.ts";
import { type Htpasswd, type HtpasswdOptions, loadHtpasswd } from "./htpasswd.ts";
import { createLimiter, type Limiter, type LimiterOptions } from "./limiter.ts";
import {
  allows,
  allowsCatalog,
  DEFAULT_POLICY,
  parsePolicy,
  type Policy,
  repositoryActions,
  type User,
} from "./policy.ts";
import {
  formatScope,
  grants,
  parseScopes,
  REPOSITORY_ACTIONS,
  type ResourceActions,
  scopeFor,
} from "./scope.ts";
import {
  builtInVerifier,
  certificateKeys,
  createIssuer,
  createVerifier,
  jwksKeys,
  loadSigningKey,
  type TokenIssuer,
  type TokenVerifier,
  type VerifiedToken,
} from "./tokens.ts";

/** What a route asks of the caller; `login` routes (the token endpoint) check credentials themselves. */
export type AuthAction = "pull" | "push" | "delete" | "catalog" | "login";

/** Who a request comes from and what it may read, for handlers that filter or mount. */
export interface Access {
  /** The user name; undefined when anonymous. */
  user: User;
  /** May the caller pull this repository (a cross-repository mount's `from`)? */
  canPull(name: string): boolean;
  /** Is this repository listed for the caller (catalog, all tags)? */
  canList(name: string): boolean;
}

export interface Authorizer {
  mode: "basic" | "token";
  /** Checks one request; throws UNAUTHORIZED, DENIED or TOOMANYREQUESTS with the challenge. */
  authorize(ctx: Context, action: AuthAction): Promise<Access>;
  /** GET/POST /auth/token of the built-in token server; 404 when there is none. */
  tokenEndpoint(ctx: Context): Promise<Response>;
  /** Signs an access token as the built-in server would (tests: expired tokens). */
  issuer?: TokenIssuer;
}

/** The auth settings of the command line (src/config.ts). */
export type AuthConfig = Pick<Config, AuthFields>;

export interface AuthTuning {
  limits?: LimiterOptions;
  htpasswd?: HtpasswdOptions;
  tokenTtlSeconds?: number;
  now?: () => number;
}

const BASIC_REALM = "Simple Registry";
/** The Basic challenge, on every 401 of Basic mode and of the token endpoint's login. */
const BASIC_CHALLENGE = { "www-authenticate": `Basic realm="${BASIC_REALM}"` };
const DEFAULT_TOKEN_SERVICE = "simple-registry";
const DEFAULT_TOKEN_ISSUER = "simple-registry";

/** Loads the files the config names; undefined when auth is off. Throws one clear Error. */
export async function createAuth(
  config: AuthConfig,
  tuning: AuthTuning = {},
): Promise<Authorizer | undefined> {
  if (config.auth === "none") return undefined;
  const htpasswd = config.htpasswd === undefined
    ? undefined
    : await loadHtpasswd(config.htpasswd, { now: tuning.now, ...tuning.htpasswd }).catch(
      (error) => {
        throw new Error(fileError("htpasswd", config.htpasswd!, error));
      },
    );
  const policy = config.accessPolicy === undefined ? undefined : await readFile(
    "access policy",
    config.accessPolicy,
    parsePolicy,
  );
  const limiter = createLimiter({ now: tuning.now, ...tuning.limits });
  if (config.auth === "basic") {
    if (!htpasswd) throw new Error("basic auth needs --htpasswd FILE");
    return basicAuthorizer(htpasswd, policy ?? DEFAULT_POLICY, limiter);
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
    return tokenAuthorizer({
      realm: () => realm,
      service,
      verifier,
      policy,
      limiter,
    });
  }

  if (!htpasswd) throw new Error("the built-in token server needs --htpasswd FILE");
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
  return tokenAuthorizer({
    realm: (ctx) => config.tokenRealm ?? externalUrl(ctx, "/auth/token"),
    service,
    verifier,
    policy: policy ?? DEFAULT_POLICY,
    limiter,
    server: { issuer, htpasswd },
  });
}

// ---------------------------------------------------------------------------------------------
// Basic

function basicAuthorizer(htpasswd: Htpasswd, policy: Policy, limiter: Limiter): Authorizer {
  const access = (user: User): Access => {
    const canPull = (name: string) => allows(policy, user, name, "pull");
    return { user, canPull, canList: canPull };
  };
  return {
    mode: "basic",
    async authorize(ctx, action) {
      if (action === "login") return access(undefined);
      const header = ctx.request.headers.get("authorization");
      let user: User;
      if (header !== null) {
        const credentials = parseBasic(header);
        if (!credentials) {
          throw new RegistryError("UNAUTHORIZED", "basic credentials expected", {
            headers: BASIC_CHALLENGE,
          });
        }
        // containers/image answers a Basic challenge with empty credentials when it has none.
        if (credentials.user !== "" || credentials.password !== "") {
          await checkPassword(htpasswd, limiter, ctx, credentials);
          user = credentials.user;
        }
      }
      const name = ctx.params.name === undefined ? undefined : requireName(ctx.params.name);
      const allowed = name === undefined
        ? action === "catalog" ? allowsCatalog(policy, user) : user !== undefined
        : action !== "catalog" && allows(policy, user, name, action);
      if (!allowed) {
        const detail = accessDetail(action, name);
        if (user === undefined) {
          throw new RegistryError("UNAUTHORIZED", undefined, { detail, headers: BASIC_CHALLENGE });
        }
        throw new RegistryError("DENIED", undefined, { detail });
      }
      return access(user);
    },
    tokenEndpoint: noTokenServer,
  };
}

// ---------------------------------------------------------------------------------------------
// Token

interface TokenSetup {
  realm: (ctx: Context) => string;
  service: string;
  verifier: TokenVerifier;
  /** Built-in: the policy the server grants from; external: only when a file is given. */
  policy?: Policy;
  limiter: Limiter;
  server?: { issuer: TokenIssuer; htpasswd: Htpasswd };
}

function tokenAuthorizer(setup: TokenSetup): Authorizer {
  const { policy, limiter, server, service } = setup;
  const challenge = (ctx: Context, scope?: ResourceActions, error?: string) => {
    let value = `Bearer realm="${setup.realm(ctx)}",service="${service}"`;
    if (scope) value += `,scope="${formatScope(scope)}"`;
    if (error) value += `,error="${error}"`;
    return { "www-authenticate": value };
  };
  const access = (token: VerifiedToken | undefined): Access => {
    const user = token?.subject;
    const claims = token?.access ?? [];
    const canPull = (name: string) =>
      grants(claims, "repository", name, "pull") ||
      (policy !== undefined && allows(policy, user, name, "pull"));
    // Behind an external server with no policy here, its catalog grant shows every repository.
    const listAll = policy === undefined && grants(claims, "registry", "catalog", "*");
    return { user, canPull, canList: (name) => listAll || canPull(name) };
  };

  return {
    mode: "token",
    issuer: server?.issuer,
    async authorize(ctx, action) {
      if (action === "login") return access(undefined);
      const name = ctx.params.name === undefined ? undefined : requireName(ctx.params.name);
      const scope = scopeFor(action, name);
      const header = ctx.request.headers.get("authorization") ?? "";
      const bearer = /^bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      let token: VerifiedToken | undefined;
      if (bearer !== undefined) {
        try {
          token = await setup.verifier.verify(bearer);
        } catch (error) {
          log.debug("token refused", { "error.message": (error as Error).message });
          throw new RegistryError("UNAUTHORIZED", "invalid or expired token", {
            headers: challenge(ctx, scope, "invalid_token"),
          });
        }
      }
      const allowed = token !== undefined && (
        scope === undefined ||
        (action === "catalog"
          ? grants(token.access, "registry", "catalog", "*")
          : grants(token.access, "repository", name!, action))
      );
      if (!allowed) {
        throw new RegistryError(
          "UNAUTHORIZED",
          token ? "the token does not grant this access" : undefined,
          {
            detail: accessDetail(action, name),
            headers: challenge(ctx, scope, token ? "insufficient_scope" : undefined),
          },
        );
      }
      return access(token);
    },
    tokenEndpoint: server
      ? (ctx) => issueToken(ctx, server.issuer, server.htpasswd, policy!, limiter, service)
      : noTokenServer,
  };
}

/** GET (Docker token protocol) or POST (OAuth2 form) /auth/token. */
async function issueToken(
  ctx: Context,
  issuer: TokenIssuer,
  htpasswd: Htpasswd,
  policy: Policy,
  limiter: Limiter,
  service: string,
): Promise<Response> {
  const post = ctx.request.method === "POST";
  const params = post
    ? new URLSearchParams(new TextDecoder().decode(await readLimited(ctx, 64 * 1024)))
    : ctx.url.searchParams;
  const requested = params.get("service");
  if (requested !== null && requested !== service) {
    throw new RegistryError("DENIED", `this token server serves "${service}"`, {
      detail: { service: requested },
      status: 400,
    });
  }
  let user: User;
  let offline: boolean;
  let scopes: ResourceActions[];
  if (post) {
    scopes = parseScopes(params.get("scope") ?? "");
    offline = params.get("access_type") === "offline";
    const grant = params.get("grant_type");
    if (grant === "password") {
      const credentials = {
        user: params.get("username") ?? "",
        password: params.get("password") ?? "",
      };
      await checkPassword(htpasswd, limiter, ctx, credentials);
      user = credentials.user;
    } else if (grant === "refresh_token") {
      try {
        user = await issuer.verifyRefresh(params.get("refresh_token") ?? "");
      } catch {
        user = undefined;
      }
      if (user === undefined || !await htpasswd.has(user)) {
        throw new RegistryError("UNAUTHORIZED", "invalid refresh token", {
          headers: BASIC_CHALLENGE,
        });
      }
    } else {
      throw new RegistryError("UNSUPPORTED", "grant_type must be password or refresh_token", {
        detail: { grant_type: grant },
        status: 400,
      });
    }
  } else {
    scopes = params.getAll("scope").flatMap(parseScopes);
    offline = params.get("offline_token") === "true";
    const credentials = parseBasic(ctx.request.headers.get("authorization") ?? "");
    if (credentials && (credentials.user !== "" || credentials.password !== "")) {
      await checkPassword(htpasswd, limiter, ctx, credentials);
      user = credentials.user;
    }
  }

  const access = grantScopes(policy, user, scopes);
  const issued = await issuer.issue(user ?? "", access);
  const refresh = offline && user !== undefined ? await issuer.issueRefresh(user) : undefined;
  log.info("token issued", {
    "auth.user": user ?? "",
    "auth.scope": access.map(formatScope).join(" "),
  });
  const body: Record<string, unknown> = {
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresIn,
    issued_at: issued.issuedAt.toISOString(),
  };
  if (post) body.scope = access.map(formatScope).join(" ");
  if (refresh) body.refresh_token = refresh;
  return json(body, { headers: { "cache-control": "no-store" } });
}

/** The requested scopes cut down to what the policy allows; a partial grant is no error. */
function grantScopes(policy: Policy, user: User, scopes: ResourceActions[]) {
  const granted = new Map<string, ResourceActions>();
  for (const scope of scopes) {
    let actions: string[] = [];
    if (scope.type === "repository") {
      if (!isName(scope.name)) continue;
      const allowed = repositoryActions(policy, user, scope.name);
      const wanted = scope.actions.includes("*") ? [...REPOSITORY_ACTIONS] : scope.actions;
      actions = wanted.filter((action) => allowed.has(action as "pull"));
    } else if (scope.type === "registry" && scope.name === "catalog") {
      actions = allowsCatalog(policy, user) ? ["*"] : [];
    }
    if (actions.length === 0) continue;
    const key = `${scope.type}:${scope.name}`;
    const entry = granted.get(key) ?? { type: scope.type, name: scope.name, actions: [] };
    entry.actions = [...new Set([...entry.actions, ...actions])];
    granted.set(key, entry);
  }
  return [...granted.values()];
}

// ---------------------------------------------------------------------------------------------
// Shared

async function checkPassword(
  htpasswd: Htpasswd,
  limiter: Limiter,
  ctx: Context,
  credentials: { user: string; password: string },
): Promise<void> {
  const address = ctx.remoteAddress ?? "";
  const blocked = limiter.blockedFor(address, credentials.user);
  if (blocked > 0) {
    throw new RegistryError("TOOMANYREQUESTS", "too many failed logins; retry later", {
      headers: { "retry-after": String(Math.ceil(blocked / 1000)) },
    });
  }
  if (await htpasswd.verify(credentials.user, credentials.password)) {
    limiter.success(address, credentials.user);
    return;
  }
  const delay = limiter.failure(address, credentials.user);
  log.info("login failed", {
    "auth.user": credentials.user,
    "client.address": address,
    "auth.delay_ms": delay,
  });
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  throw new RegistryError("UNAUTHORIZED", "invalid username or password", {
    headers: BASIC_CHALLENGE,
  });
}

/** `Authorization: Basic base64(user:password)`, or undefined when it is not Basic. */
function parseBasic(header: string): { user: string; password: string } | undefined {
  const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(match[1]), (char) => char.charCodeAt(0)),
    );
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function accessDetail(action: AuthAction, name: string | undefined) {
  if (action === "catalog") return [{ Type: "registry", Name: "catalog", Action: "*" }];
  return name === undefined ? undefined : [{ Type: "repository", Name: name, Action: action }];
}

/** The route handler of GET/POST /auth/token: the built-in token server, when there is one. */
export function tokenEndpoint(ctx: Context): Promise<Response> {
  return ctx.auth ? ctx.auth.tokenEndpoint(ctx) : noTokenServer();
}

function noTokenServer(): Promise<Response> {
  return Promise.reject(
    new RegistryError("UNSUPPORTED", "no token server here", { status: 404 }),
  );
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
