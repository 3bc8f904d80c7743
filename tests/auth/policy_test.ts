// Unit tests of src/auth/policy.ts: parsing and errors, first-match rules, groups, globs, catalog.

import {
  allows,
  allowsCatalog,
  DEFAULT_POLICY,
  globToRegExp,
  parsePolicy,
  repositoryActions,
} from "../../src/auth/policy.ts";
import { assert, assertEquals, assertThrows } from "../helpers.ts";

const POLICY = parsePolicy(JSON.stringify({
  groups: { admins: ["alice"], ci: ["bot", "carol"] },
  rules: [
    { users: ["@admins"], repositories: ["**"], actions: ["*"] },
    { users: ["*"], repositories: ["secret/**"], actions: [] },
    { users: ["@ci"], repositories: ["team/*", "tools/**"], actions: ["pull", "push"] },
    { users: ["bob"], repositories: ["team/app"], actions: ["pull"] },
    { users: ["anonymous", "*"], repositories: ["public/**"], actions: ["pull"] },
    { users: ["*"], actions: ["catalog"], comment: "every user may list (filtered)" },
  ],
}));

Deno.test("policy: first matching rule decides", () => {
  assertEquals([...repositoryActions(POLICY, "alice", "secret/x")].sort(), [
    "delete",
    "pull",
    "push",
  ]);
  assertEquals([...repositoryActions(POLICY, "bot", "secret/x")], [], "deny rule before ci rule");
  assert(allows(POLICY, "bot", "team/app", "push"));
  assert(!allows(POLICY, "bot", "team/app", "delete"));
  assert(allows(POLICY, "bob", "team/app", "pull"));
  assert(!allows(POLICY, "bob", "team/app", "push"));
  assert(!allows(POLICY, "bob", "team/other", "pull"));
});

Deno.test("policy: anonymous, * and groups", () => {
  assert(allows(POLICY, undefined, "public/base/alpine", "pull"));
  assert(!allows(POLICY, undefined, "public/base", "push"));
  assert(!allows(POLICY, undefined, "team/app", "pull"));
  assert(allows(POLICY, "zed", "public/x", "pull"), "* covers any user");
  assert(allows(POLICY, "carol", "tools/a/b/c", "push"), "** crosses slashes");
  assert(!allows(POLICY, "carol", "team/a/b", "pull"), "* stays in one component");
});

Deno.test("policy: catalog is granted by any rule naming it; never a repository action", () => {
  assert(allowsCatalog(POLICY, "bob"));
  assert(allowsCatalog(POLICY, "alice"));
  assert(!allowsCatalog(POLICY, undefined));
  assert(!repositoryActions(POLICY, "alice", "a").has("catalog"));
});

Deno.test("policy: default — authenticated everything, anonymous nothing", () => {
  assert(allows(DEFAULT_POLICY, "anyone", "a/b/c", "delete"));
  assert(allowsCatalog(DEFAULT_POLICY, "anyone"));
  assert(!allows(DEFAULT_POLICY, undefined, "a", "pull"));
  assert(!allowsCatalog(DEFAULT_POLICY, undefined));
});

Deno.test("policy: globs are anchored and escape regex characters", () => {
  assert(globToRegExp("a.b/*").test("a.b/c"));
  assert(!globToRegExp("a.b/*").test("axb/c"));
  assert(!globToRegExp("a/*").test("a/b/c"));
  assert(!globToRegExp("team").test("team/app"));
  assert(globToRegExp("app-?").test("app-1"));
});

Deno.test("policy: bad files are refused with a message naming the part", () => {
  const bad = (value: unknown, includes: string) =>
    assertThrows(() => parsePolicy(JSON.stringify(value)), Error, includes);
  assertThrows(() => parsePolicy("{"), Error, "not JSON");
  bad([], "JSON object");
  bad({ rules: {} }, `"rules" must be a list`);
  bad(
    { rules: [{ users: ["a"], repositories: ["x"], actions: ["pul"] }] },
    `rule 1 has the unknown action "pul"`,
  );
  bad({ rules: [{ users: [], actions: [] }] }, `rule 1 "users" is empty`);
  bad({ rules: [{ users: ["@nobody"], actions: [] }] }, "undefined group @nobody");
  bad({ rules: [{ users: ["a"], actions: [], repos: [] }] }, `unknown key "repos"`);
  bad({ rulez: [] }, `unknown key "rulez"`);
  bad({ groups: { g: "a" }, rules: [] }, `group "g"`);
});
