// Owns the contract between HTTP and auth: the actions routes ask for, who asks, the authorizer.
// Implements the actions of distribution's token scopes (docs/spec/auth/scope.md) as routes use them.

import type { ByteBudget } from "../budget.ts";
import type { Forwarded } from "../forwarded.ts";
import type { TokenIssuer } from "./tokens.ts";

/** Every action a `*` on a repository stands for. */
export const REPOSITORY_ACTIONS = ["pull", "push", "delete"] as const;
export type RepositoryAction = (typeof REPOSITORY_ACTIONS)[number];

/**
 * What a request does, for access control: read, write or delete a repository, list the
 * registry, `login` (the token endpoint and the web UI's sign-in, which check credentials
 * themselves), or `public` (the web UI's page and static files, which hold no data).
 */
export type Action = RepositoryAction | "catalog" | "login" | "public";

/** What a policy can grant: every action but `login` and `public`. */
export type PolicyAction = Exclude<Action, "login" | "public">;

/** Who asks: a user name, or undefined for an anonymous request. */
export type User = string | undefined;

/** What auth reads of a request; the HTTP layer's Context is one. */
export interface AuthRequest {
  request: Request;
  url: URL;
  params: Record<string, string | undefined>;
  /**
   * The client's address (for brute-force limits): the socket peer, or behind a trusted proxy the
   * address it forwarded; absent in tests that call the app directly.
   */
  remoteAddress?: string;
  /** Bytes of request bodies that may be held in memory at once (readLimited: token forms too). */
  budget?: ByteBudget;
  /** The scheme and host a trusted proxy says the client reached (src/forwarded.ts). */
  forwarded?: Forwarded;
}

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
  authorize(req: AuthRequest, action: Action): Promise<Access>;
  /** GET/POST /auth/token of the built-in token server; absent when there is none. */
  tokenEndpoint?(req: AuthRequest): Promise<Response>;
  /** Signs an access token as the built-in server would (tests: expired tokens). */
  issuer?: TokenIssuer;
  /** Stops the password-checking workers (idle ones stop by themselves). */
  close?(): void;
  /**
   * What the access policy lets `user` do, for the web UI's sessions (which carry a user name,
   * not credentials); `name` undefined asks about the registry (`catalog`). Absent where no
   * policy decides (behind an external token server without a policy file): nothing is allowed.
   */
  permits?(user: User, action: PolicyAction, name?: string): boolean;
  /**
   * Checks a user name and password as a Basic login does, limits included (the web UI's
   * sign-in); absent without an htpasswd file (behind an external token server).
   */
  checkPassword?(req: AuthRequest, credentials: { user: string; password: string }): Promise<void>;
}
