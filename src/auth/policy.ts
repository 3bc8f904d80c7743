// Owns the access policy: ordered JSON rules mapping users and groups to repository globs and actions.
// Implements issue 5's per-repository access control (CNCF distribution has none of its own).

import { globToRegExp } from "../glob.ts";
import type { PolicyAction, User } from "./types.ts";
import { isObject } from "../fields.ts";

export { globToRegExp };

const ACTIONS: readonly PolicyAction[] = ["pull", "push", "delete", "catalog"];

interface Rule {
  users: string[];
  repositories: RegExp[];
  actions: Set<PolicyAction>;
}

export interface Policy {
  groups: Map<string, Set<string>>;
  rules: Rule[];
}

/** No policy file: an authenticated user may do everything, an anonymous request nothing. */
export const DEFAULT_POLICY: Policy = {
  groups: new Map(),
  rules: [{ users: ["*"], repositories: [/^/], actions: new Set(ACTIONS) }],
};

/**
 * Parses a policy file's text. Format:
 * `{"groups": {"admins": ["alice"]}, "rules": [{"users": ["@admins", "bob", "*", "anonymous"],
 * "repositories": ["team/**", "tools/*"], "actions": ["pull", "push", "delete", "catalog"]}]}`.
 * Throws an Error whose message names the offending part.
 */
export function parsePolicy(text: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  return policyFrom(raw);
}

/** A policy from its parsed JSON value (a file's, or written inline in the config file). */
export function policyFrom(raw: unknown): Policy {
  if (!isObject(raw)) throw new Error("the policy must be a JSON object");
  unknownKeys(raw, ["groups", "rules"], "the policy");
  const groups = new Map<string, Set<string>>();
  if (raw.groups !== undefined) {
    if (!isObject(raw.groups)) throw new Error(`"groups" must map group names to user lists`);
    for (const [group, members] of Object.entries(raw.groups)) {
      groups.set(group, new Set(stringList(members, `group "${group}"`)));
    }
  }
  if (!Array.isArray(raw.rules)) throw new Error(`"rules" must be a list`);
  const rules = raw.rules.map((rule: unknown, index: number): Rule => {
    const where = `rule ${index + 1}`;
    if (!isObject(rule)) throw new Error(`${where} must be an object`);
    unknownKeys(rule, ["users", "repositories", "actions", "comment"], where);
    const users = stringList(rule.users, `${where} "users"`);
    if (users.length === 0) throw new Error(`${where} "users" is empty`);
    for (const user of users) {
      if (user.startsWith("@") && !groups.has(user.slice(1))) {
        throw new Error(`${where} names the undefined group ${user}`);
      }
    }
    const repositories = rule.repositories === undefined
      ? []
      : stringList(rule.repositories, `${where} "repositories"`).map(globToRegExp);
    const actions = new Set<PolicyAction>();
    for (const action of stringList(rule.actions, `${where} "actions"`)) {
      if (action === "*") ACTIONS.forEach((one) => actions.add(one));
      else if ((ACTIONS as readonly string[]).includes(action)) actions.add(action as PolicyAction);
      else throw new Error(`${where} has the unknown action "${action}"`);
    }
    return { users, repositories, actions };
  });
  return { groups, rules };
}

/** The first rule matching both `user` and repository `name`: the one that decides. */
function deciding(policy: Policy, user: User, name: string) {
  return policy.rules.find((rule) =>
    matchesUser(policy, rule, user) && rule.repositories.some((glob) => glob.test(name))
  );
}

/** The actions `user` has on repository `name`: those of the deciding rule. */
export function repositoryActions(policy: Policy, user: User, name: string): Set<PolicyAction> {
  const actions = deciding(policy, user, name)?.actions ?? [];
  return new Set([...actions].filter((action) => action !== "catalog"));
}

/** Checked per request and per listed repository, so it builds nothing. */
export function allows(policy: Policy, user: User, name: string, action: PolicyAction): boolean {
  return action !== "catalog" && (deciding(policy, user, name)?.actions.has(action) ?? false);
}

/** Listing the catalog is registry-wide: any rule matching the user that names `catalog`. */
export function allowsCatalog(policy: Policy, user: User): boolean {
  return policy.rules.some((rule) =>
    rule.actions.has("catalog") && matchesUser(policy, rule, user)
  );
}

function matchesUser(policy: Policy, rule: Rule, user: User): boolean {
  return rule.users.some((pattern) => {
    if (pattern === "anonymous") return user === undefined;
    if (user === undefined) return false;
    if (pattern === "*") return true;
    if (pattern.startsWith("@")) return policy.groups.get(pattern.slice(1))?.has(user) ?? false;
    return pattern === user;
  });
}

function stringList(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new Error(`${where} must be a list of strings`);
  }
  return value;
}

function unknownKeys(value: Record<string, unknown>, known: string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new Error(`${where} has the unknown key "${key}"`);
  }
}
