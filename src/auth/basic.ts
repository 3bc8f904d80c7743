// Owns Basic mode: htpasswd credentials on every request, then the access policy decides.
// Implements distribution's htpasswd access controller (RFC 7617 challenge, 401/403 per the spec).

import { RegistryError } from "../errors.ts";
import { requireName } from "../grammar.ts";
import { BASIC_CHALLENGE, parseBasic, type PasswordCheck } from "./credentials.ts";
import { allows, allowsCatalog, type Policy } from "./policy.ts";
import { accessDetail } from "./scope.ts";
import type { Access, Authorizer, User } from "./types.ts";

/** `policy` is the one in force: a reload may replace it between two requests. */
export function basicAuthorizer(checkPassword: PasswordCheck, current: () => Policy): Authorizer {
  const access = (user: User): Access => {
    const policy = current();
    const canPull = (name: string) => allows(policy, user, name, "pull");
    return { user, canPull, canList: canPull };
  };
  return {
    mode: "basic",
    permits: (user, action, name) =>
      name === undefined
        ? action === "catalog" && allowsCatalog(current(), user)
        : allows(current(), user, name, action),
    checkPassword,
    async authorize(req, action) {
      if (action === "login" || action === "public") return access(undefined);
      const header = req.request.headers.get("authorization");
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
          await checkPassword(req, credentials);
          user = credentials.user;
        }
      }
      const name = req.params.name === undefined ? undefined : requireName(req.params.name);
      const policy = current();
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
  };
}
