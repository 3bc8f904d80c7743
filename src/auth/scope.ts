// Owns Docker token scopes and access claims: parsing `type:name:actions`, matching grants.
// Implements distribution's docs/spec/auth/scope.md grammar and jwt.md's `access` claim.

import { isName } from "../grammar.ts";

/** One requested or granted resource: `repository:<name>:pull,push` or `registry:catalog:*`. */
export interface ResourceActions {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Parses one or more scopes, space-separated. The name sits between the first colon and the
 * last one, so `repository:localhost:5000/app:pull` names `localhost:5000/app`. A resource class
 * (`repository(plugin)`) is dropped; malformed scopes are skipped, as distribution does.
 */
export function parseScopes(text: string): ResourceActions[] {
  const scopes: ResourceActions[] = [];
  for (const part of text.split(" ")) {
    const first = part.indexOf(":");
    const last = part.lastIndexOf(":");
    if (first <= 0 || last === first) continue;
    const type = part.slice(0, first).replace(/\(.*\)$/, "");
    const name = part.slice(first + 1, last);
    const actions = part.slice(last + 1).split(",").filter((action) => action !== "");
    if (!/^[a-z0-9]+$/.test(type) || name === "" || actions.length === 0) continue;
    scopes.push({ type, name, actions: [...new Set(actions)] });
  }
  return scopes;
}

export function formatScope(scope: ResourceActions): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(",")}`;
}

/** Whether grants hold `action` on `type:name` (a `*` action grants every action). */
export function grants(access: ResourceActions[], type: string, name: string, action: string) {
  return access.some((entry) =>
    entry.type === type && entry.name === name &&
    (entry.actions.includes(action) || entry.actions.includes("*"))
  );
}

/** The `access` claim of a token, checked for shape; undefined when malformed. */
export function readAccessClaim(claim: unknown): ResourceActions[] | undefined {
  if (claim === undefined || claim === null) return [];
  if (!Array.isArray(claim)) return undefined;
  const access: ResourceActions[] = [];
  for (const entry of claim) {
    if (
      typeof entry !== "object" || entry === null || typeof entry.type !== "string" ||
      typeof entry.name !== "string" || !Array.isArray(entry.actions) ||
      !entry.actions.every((action: unknown) => typeof action === "string")
    ) return undefined;
    access.push({ type: entry.type, name: entry.name, actions: entry.actions });
  }
  return access;
}

/** The scope a client needs for an action, as the challenge's `scope` announces it. */
export function scopeFor(action: string, name: string | undefined): ResourceActions | undefined {
  if (action === "catalog") return { type: "registry", name: "catalog", actions: ["*"] };
  if (name === undefined || !isName(name)) return undefined;
  return { type: "repository", name, actions: action === "push" ? ["pull", "push"] : [action] };
}

/** The error detail naming the access a refused request needed (distribution's `detail`). */
export function accessDetail(action: string, name: string | undefined) {
  if (action === "catalog") return [{ Type: "registry", Name: "catalog", Action: "*" }];
  return name === undefined ? undefined : [{ Type: "repository", Name: name, Action: action }];
}
