// Owns the checking of a user name and password, shared by Basic and the token server's logins.
// Implements distribution's htpasswd check (RFC 7617 Basic credentials) behind brute-force limits.

import { createHash } from "node:crypto";
import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import { PoolBusyError } from "./bcrypt_pool.ts";
import type { Htpasswd } from "./htpasswd.ts";
import { addressKey, type Limiter } from "./limiter.ts";
import type { AuthRequest } from "./types.ts";

const BASIC_REALM = "Simple Registry";
/** The Basic challenge, on every 401 of Basic mode and of the token endpoint's login. */
export const BASIC_CHALLENGE = { "www-authenticate": `Basic realm="${BASIC_REALM}"` };

export interface Credentials {
  user: string;
  password: string;
}

/**
 * Resolves when the password is right; throws UNAUTHORIZED, TOOMANYREQUESTS (this client's limits)
 * or UNAVAILABLE (every password check slot taken) otherwise.
 */
export type PasswordCheck = (req: AuthRequest, credentials: Credentials) => Promise<void>;

export interface PasswordCheckOptions {
  /** Distinct password checks one address may have running or waiting (default 4). */
  perAddress?: number;
}

/**
 * In order: a block of this user from this address refuses; credentials that passed lately pass
 * (a logged-in user is never held up by a flood from its own address); a blocked or busy address
 * is refused without a bcrypt; then the bcrypt runs, on the pool behind `htpasswd`.
 */
export function createPasswordCheck(
  htpasswd: Htpasswd,
  limiter: Limiter,
  options: PasswordCheckOptions = {},
): PasswordCheck {
  const perAddress = options.perAddress ?? 4;
  /** Address → the credentials being checked for it (concurrent identical logins count once). */
  const checking = new Map<string, Set<string>>();
  const tooMany = (ms: number, message: string) =>
    new RegistryError("TOOMANYREQUESTS", message, {
      headers: { "retry-after": String(Math.max(1, Math.ceil(ms / 1000))) },
    });
  return async (req, credentials) => {
    const { user, password } = credentials;
    const address = req.remoteAddress ?? "";
    const blocked = limiter.blockedFor(address, user);
    if (blocked > 0) throw tooMany(blocked, "too many failed logins; retry later");
    if (await htpasswd.known(user, password)) {
      limiter.success(address, user);
      return;
    }
    const addressBlocked = limiter.addressBlockedFor(address);
    if (addressBlocked > 0) {
      // Counted against the pair, so a cached password cannot be guessed here for free.
      if (await htpasswd.has(user)) limiter.refused(address, user);
      throw tooMany(addressBlocked, "too many failed logins from this address; retry later");
    }
    const key = addressKey(address);
    const mine = createHash("sha256").update(`${user}\0${password}`).digest("base64");
    const running = checking.get(key) ?? new Set<string>();
    if (!running.has(mine) && running.size >= perAddress) {
      throw tooMany(1000, "too many logins in progress from this address; retry later");
    }
    running.add(mine);
    checking.set(key, running);
    let ok: boolean;
    try {
      ok = await htpasswd.verify(user, password);
    } catch (error) {
      if (!(error instanceof PoolBusyError)) throw error;
      throw new RegistryError("UNAVAILABLE", "too many logins in progress; retry later", {
        headers: { "retry-after": "1" },
      });
    } finally {
      running.delete(mine);
      if (running.size === 0) checking.delete(key);
    }
    if (ok) {
      limiter.success(address, user);
      return;
    }
    const delay = limiter.failure(address, user);
    log.info("login failed", {
      "auth.user": user,
      "client.address": address,
      "auth.delay_ms": delay,
    });
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    throw new RegistryError("UNAUTHORIZED", "invalid username or password", {
      headers: BASIC_CHALLENGE,
    });
  };
}

/** `Authorization: Basic base64(user:password)`, or undefined when it is not Basic. */
export function parseBasic(header: string): Credentials | undefined {
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
