// Owns the web UI's sign-in: a signed, short-lived session cookie, its checks per request, CSRF tokens.
// No spec section; the cookie follows RFC 6265bis (HttpOnly, SameSite=Strict) and OWASP's CSRF advice.

import { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Access, Action, User } from "../auth/types.ts";
import { RegistryError } from "../errors.ts";
import { requireName } from "../grammar.ts";
import { type Context, externalUrl, json, readLimited } from "../http.ts";
import { log } from "../log.ts";

/*
 * The browser never holds a password or a token it can read: signing in posts the name and
 * password once (checked like a Basic login, with its limits), and the answer sets an HttpOnly,
 * SameSite=Strict cookie sent only to /ui/api/. The cookie is `<payload>.<mac>`: user, a random
 * session id and an expiry, signed with a key derived from the one the store keeps for upload
 * sessions, so another instance or a restarted process accepts it. It lives SESSION_TTL and is
 * renewed by the session endpoint once half of it is spent; signing out revokes its id (on every
 * instance, with Redis).
 * Every request that changes something (sign-in, sign-out, deletes) must come from this origin
 * (Origin, Sec-Fetch-Site) and carry X-CSRF-Token, a MAC of the session id that only a page of
 * this origin can read: a cross-site form cannot set the header, a cross-site fetch that sets it
 * needs a CORS preflight this server never grants.
 */

export const SESSION_COOKIE = "sr_session";
/** The cookie reaches the UI's data endpoints only, never /v2/ or the pages. */
const COOKIE_PATH = "/ui/api";
export const SESSION_TTL_MS = 60 * 60 * 1000;
const CSRF_HEADER = "x-csrf-token";
const KEY_LABEL = "simple-registry ui session v1";

interface SessionClaims {
  /** User name. */
  u: string;
  /** Session id. */
  i: string;
  /** Expiry, ms since the epoch. */
  e: number;
}

export interface UiSession {
  user: string;
  id: string;
  expires: number;
}

const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");

async function sessionKey(ctx: Context): Promise<Uint8Array> {
  const storeKey = await ctx.store.state.sessions.key();
  return createHmac("sha256", storeKey).update(KEY_LABEL).digest();
}

const mac = (key: Uint8Array, text: string) =>
  createHmac("sha256", key).update(text).digest("base64url");

function sign(key: Uint8Array, claims: SessionClaims): string {
  const payload = base64url(new TextEncoder().encode(JSON.stringify(claims)));
  return `${payload}.${mac(key, payload)}`;
}

function sameText(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** The request's valid session, or undefined (none, forged, expired or signed out). */
export async function readSession(ctx: Context): Promise<UiSession | undefined> {
  const cookie = cookieValue(ctx.request, SESSION_COOKIE);
  const ui = ctx.ui;
  if (!cookie || !ui || !ctx.auth) return undefined;
  const [payload, signature, extra] = cookie.split(".");
  if (!payload || !signature || extra !== undefined) return undefined;
  if (!sameText(mac(await sessionKey(ctx), payload), signature)) return undefined;
  let claims: SessionClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof claims?.u !== "string" || typeof claims.i !== "string") return undefined;
  if (typeof claims.e !== "number" || claims.e <= ui.now()) return undefined;
  if (await ui.signedOut.isRevoked(claims.i)) return undefined;
  return { user: claims.u, id: claims.i, expires: claims.e };
}

/** What a session's user (or an anonymous visitor) may see, by the access policy. */
function policyAccess(ctx: Context, user: User): Access {
  const canPull = (name: string) => ctx.auth?.permits?.(user, "pull", name) ?? false;
  return { user, canPull, canList: canPull };
}

/**
 * Authorizes a UI route. API credentials (an Authorization header) are checked as the API
 * checks them; otherwise the session cookie names the user (none: anonymous) and the same access
 * policy decides. A refusal has no Basic challenge, so a browser never pops up its own dialog.
 */
export async function authorizeUi(ctx: Context, action: Action): Promise<Access> {
  const auth = ctx.auth!;
  if (action === "public" || action === "login") {
    return policyAccess(ctx, (await readSession(ctx))?.user);
  }
  if (ctx.request.headers.has("authorization")) return auth.authorize(ctx, action);
  const user = (await readSession(ctx))?.user;
  const name = ctx.params.name === undefined ? undefined : requireName(ctx.params.name);
  const allowed = (name === undefined || action !== "catalog") &&
    (auth.permits?.(user, action, name) ?? false);
  if (!allowed) {
    if (user === undefined) {
      throw new RegistryError("UNAUTHORIZED", "sign in to see this", {
        headers: { "www-authenticate": `Cookie realm="Simple Registry", form="/ui/login"` },
      });
    }
    throw new RegistryError("DENIED", undefined, { detail: { name, action } });
  }
  return policyAccess(ctx, user);
}

/** Whether the caller may delete in a repository (to offer the button; the route decides). */
export function mayDelete(ctx: Context, name: string): boolean {
  if (!ctx.store.state.deleteEnabled) return false;
  if (!ctx.auth) return true;
  return ctx.auth.permits?.(ctx.access?.user, "delete", name) ?? false;
}

async function csrfToken(ctx: Context, session: UiSession | undefined): Promise<string> {
  return mac(await sessionKey(ctx), `csrf:${session?.id ?? "anonymous"}`);
}

/**
 * Refuses a state-changing UI request that did not come from one of this origin's pages:
 * a foreign Origin or Sec-Fetch-Site, or a missing or wrong X-CSRF-Token. A request with API
 * credentials of its own (a script with an Authorization header) is not a browser's and passes.
 */
export async function requireSameOrigin(ctx: Context): Promise<void> {
  const deny = (why: string) => {
    log.info("ui request refused", { "ui.reason": why, "url.path": ctx.url.pathname });
    return new RegistryError("DENIED", `cross-site request refused: ${why}`);
  };
  const site = ctx.request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin") throw deny(`Sec-Fetch-Site ${site}`);
  const origin = ctx.request.headers.get("origin");
  if (origin !== null && origin !== new URL(externalUrl(ctx, "/")).origin) {
    throw deny("foreign Origin");
  }
  if (ctx.request.headers.has("authorization")) return;
  const given = ctx.request.headers.get(CSRF_HEADER) ?? "";
  if (!sameText(given, await csrfToken(ctx, await readSession(ctx)))) {
    throw deny("X-CSRF-Token missing or wrong");
  }
}

function sessionCookie(ctx: Context, value: string, maxAgeSeconds: number): string {
  const secure = externalUrl(ctx, "/").startsWith("https:") ? "; Secure" : "";
  return `${SESSION_COOKIE}=${value}; Path=${COOKIE_PATH}; Max-Age=${maxAgeSeconds}; ` +
    `HttpOnly; SameSite=Strict${secure}`;
}

async function describeSession(ctx: Context, session: UiSession | undefined) {
  const auth = ctx.auth;
  return {
    auth: auth?.mode ?? "none",
    user: session?.user ?? null,
    /** Whether a user can sign in here (an htpasswd file); behind an external token server not. */
    signIn: auth?.checkPassword !== undefined,
    deletes: ctx.store.state.deleteEnabled,
    csrf: await csrfToken(ctx, session),
    host: new URL(externalUrl(ctx, "/")).host,
  };
}

/** GET /ui/api/session: who is signed in, and the CSRF token; renews a half-spent session. */
export async function getSession(ctx: Context): Promise<Response> {
  const session = await readSession(ctx);
  const headers = new Headers();
  if (session && session.expires - ctx.ui!.now() < SESSION_TTL_MS / 2) {
    const renewed = { ...session, expires: ctx.ui!.now() + SESSION_TTL_MS };
    headers.set("set-cookie", await issue(ctx, renewed));
  }
  return json(await describeSession(ctx, session), { headers });
}

async function issue(ctx: Context, session: UiSession): Promise<string> {
  const value = sign(await sessionKey(ctx), { u: session.user, i: session.id, e: session.expires });
  return sessionCookie(ctx, value, Math.round(SESSION_TTL_MS / 1000));
}

/** POST /ui/api/session `{"user","password"}`: signs in and sets the session cookie. */
export async function signIn(ctx: Context): Promise<Response> {
  await requireSameOrigin(ctx);
  const check = ctx.auth?.checkPassword;
  if (!check) {
    throw new RegistryError("UNSUPPORTED", "signing in needs --htpasswd on this registry", {
      status: 404,
    });
  }
  let credentials: { user?: unknown; password?: unknown };
  try {
    credentials = JSON.parse(new TextDecoder().decode(await readLimited(ctx, 4096)));
  } catch {
    credentials = {};
  }
  const { user, password } = credentials ?? {};
  if (typeof user !== "string" || typeof password !== "string" || user === "") {
    throw new RegistryError("UNAUTHORIZED", "a user name and a password are needed");
  }
  // Its 401 carries Basic's challenge, which would make a browser prompt: dropped here.
  try {
    await check(ctx, { user, password });
  } catch (error) {
    if (error instanceof RegistryError && error.code === "UNAUTHORIZED") {
      throw new RegistryError("UNAUTHORIZED", "wrong user name or password");
    }
    throw error;
  }
  const session = {
    user,
    id: base64url(randomBytes(16)),
    expires: ctx.ui!.now() + SESSION_TTL_MS,
  };
  log.info("ui signed in", { "auth.user": user });
  return json(await describeSession(ctx, session), {
    headers: { "set-cookie": await issue(ctx, session) },
  });
}

/** DELETE /ui/api/session: signs out (the session id is revoked) and clears the cookie. */
export async function signOut(ctx: Context): Promise<Response> {
  await requireSameOrigin(ctx);
  const session = await readSession(ctx);
  if (session) await ctx.ui!.signedOut.revoke(session.id, session.expires);
  return json(await describeSession(ctx, undefined), {
    headers: { "set-cookie": sessionCookie(ctx, "", 0) },
  });
}
