// Owns the checking of a user name and password, shared by Basic and the token server's logins.
// Implements distribution's htpasswd check (RFC 7617 Basic credentials) behind brute-force limits.

import { RegistryError } from "../errors.ts";
import { log } from "../log.ts";
import type { Htpasswd } from "./htpasswd.ts";
import type { Limiter } from "./limiter.ts";
import type { AuthRequest } from "./types.ts";

const BASIC_REALM = "Simple Registry";
/** The Basic challenge, on every 401 of Basic mode and of the token endpoint's login. */
export const BASIC_CHALLENGE = { "www-authenticate": `Basic realm="${BASIC_REALM}"` };

export interface Credentials {
  user: string;
  password: string;
}

/** Resolves when the password is right; throws UNAUTHORIZED or TOOMANYREQUESTS otherwise. */
export type PasswordCheck = (req: AuthRequest, credentials: Credentials) => Promise<void>;

export function createPasswordCheck(htpasswd: Htpasswd, limiter: Limiter): PasswordCheck {
  return async (req, credentials) => {
    const address = req.remoteAddress ?? "";
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
