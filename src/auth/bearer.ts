// Owns Bearer mode: signed access tokens on every request, challenges naming realm, service, scope.
// Implements distribution's token access controller (docs/spec/auth/token.md, RFC 6750 challenges).

import { RegistryError } from "../errors.ts";
import { requireName } from "../grammar.ts";
import { log } from "../log.ts";
import type { PasswordCheck } from "./credentials.ts";
import { allows, allowsCatalog, type Policy } from "./policy.ts";
import { accessDetail, formatScope, grants, type ResourceActions, scopeFor } from "./scope.ts";
import type { TokenIssuer, TokenVerifier, VerifiedToken } from "./tokens.ts";
import type { Access, Authorizer, AuthRequest } from "./types.ts";

export interface BearerSetup {
  /** The token server's URL the challenge names. */
  realm: (req: AuthRequest) => string;
  service: string;
  verifier: TokenVerifier;
  /**
   * Built-in: the policy the server grants from; external: only when a file is given. The one
   * in force: a reload may replace it between two requests.
   */
  policy: () => Policy | undefined;
  /** The built-in token server (src/auth/token_server.ts), when this process runs it. */
  tokenEndpoint?: (req: AuthRequest) => Promise<Response>;
  issuer?: TokenIssuer;
  /** The built-in server's password check, for the web UI's sign-in. */
  checkPassword?: PasswordCheck;
}

/** An RFC 9110 quoted-string: a value can never end the parameter early. */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

export function bearerAuthorizer(setup: BearerSetup): Authorizer {
  const { service } = setup;
  const challenge = (req: AuthRequest, scope?: ResourceActions, error?: string) => {
    let value = `Bearer realm=${quoted(setup.realm(req))},service=${quoted(service)}`;
    if (scope) value += `,scope=${quoted(formatScope(scope))}`;
    if (error) value += `,error=${quoted(error)}`;
    return { "www-authenticate": value };
  };
  const access = (token: VerifiedToken | undefined): Access => {
    const policy = setup.policy();
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
    issuer: setup.issuer,
    tokenEndpoint: setup.tokenEndpoint,
    checkPassword: setup.checkPassword,
    // Only where this registry has a policy of its own (built-in server, or a file given).
    permits: setup.policy() &&
      ((user, action, name) => {
        const policy = setup.policy();
        if (!policy) return false;
        return name === undefined
          ? action === "catalog" && allowsCatalog(policy, user)
          : allows(policy, user, name, action);
      }),
    async authorize(req, action) {
      if (action === "login" || action === "public") return access(undefined);
      const name = req.params.name === undefined ? undefined : requireName(req.params.name);
      const scope = scopeFor(action, name);
      const header = req.request.headers.get("authorization") ?? "";
      const bearer = /^bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      let token: VerifiedToken | undefined;
      if (bearer !== undefined) {
        try {
          token = await setup.verifier.verify(bearer);
        } catch (error) {
          log.debug("token refused", { "error.message": (error as Error).message });
          throw new RegistryError("UNAUTHORIZED", "invalid or expired token", {
            headers: challenge(req, scope, "invalid_token"),
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
            headers: challenge(req, scope, token ? "insufficient_scope" : undefined),
          },
        );
      }
      return access(token);
    },
  };
}
