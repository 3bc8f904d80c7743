// Owns the built-in token server: GET (Docker token protocol) and POST (OAuth2 form) /auth/token.
// Implements distribution's docs/spec/auth/token.md and oauth.md (password and refresh_token grants).

import { RegistryError } from "../errors.ts";
import { isName } from "../grammar.ts";
import { json, readLimited } from "../http.ts";
import { log } from "../log.ts";
import { BASIC_CHALLENGE, parseBasic, type PasswordCheck } from "./credentials.ts";
import type { Htpasswd } from "./htpasswd.ts";
import { allowsCatalog, type Policy, repositoryActions } from "./policy.ts";
import { formatScope, parseScopes, type ResourceActions } from "./scope.ts";
import type { TokenIssuer } from "./tokens.ts";
import { type AuthRequest, REPOSITORY_ACTIONS, type User } from "./types.ts";

export interface TokenServerSetup {
  issuer: TokenIssuer;
  htpasswd: Htpasswd;
  checkPassword: PasswordCheck;
  /** The policy in force (a reload may replace it between two requests). */
  policy: () => Policy;
  service: string;
}

/** The handler of GET and POST /auth/token. */
export function tokenServer(setup: TokenServerSetup): (req: AuthRequest) => Promise<Response> {
  return (req) => issueToken(req, setup);
}

async function issueToken(req: AuthRequest, setup: TokenServerSetup): Promise<Response> {
  const { issuer, htpasswd, checkPassword, service } = setup;
  const policy = setup.policy();
  const post = req.request.method === "POST";
  const params = post
    ? new URLSearchParams(new TextDecoder().decode(await readLimited(req, 64 * 1024)))
    : req.url.searchParams;
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
      await checkPassword(req, credentials);
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
    const credentials = parseBasic(req.request.headers.get("authorization") ?? "");
    if (credentials && (credentials.user !== "" || credentials.password !== "")) {
      await checkPassword(req, credentials);
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
