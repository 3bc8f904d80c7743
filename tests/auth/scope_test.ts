// Unit tests of src/auth/scope.ts: scope grammar (host:port names, several scopes), grants, claims.

import {
  formatScope,
  grants,
  parseScopes,
  readAccessClaim,
  scopeFor,
} from "../../src/auth/scope.ts";
import { assert, assertEquals } from "../helpers.ts";

Deno.test("scope: one repository scope", () => {
  assertEquals(parseScopes("repository:samalba/my-app:pull,push"), [
    { type: "repository", name: "samalba/my-app", actions: ["pull", "push"] },
  ]);
});

Deno.test("scope: a name with host:port/ keeps its colon", () => {
  assertEquals(parseScopes("repository:localhost:5000/team/app:pull"), [
    { type: "repository", name: "localhost:5000/team/app", actions: ["pull"] },
  ]);
});

Deno.test("scope: several scopes, space-separated; catalog; resource class dropped", () => {
  assertEquals(
    parseScopes(
      "repository:a:pull registry:catalog:* repository(plugin):b/c:push,pull,push repository:x:",
    ),
    [
      { type: "repository", name: "a", actions: ["pull"] },
      { type: "registry", name: "catalog", actions: ["*"] },
      { type: "repository", name: "b/c", actions: ["push", "pull"] },
    ],
  );
});

Deno.test("scope: malformed scopes are skipped", () => {
  for (
    const bad of ["", "repository", "repository:a", ":a:pull", "repository::pull", "Repo:a:pull"]
  ) {
    assertEquals(parseScopes(bad), [], bad);
  }
});

Deno.test("scope: format round-trips", () => {
  const text = "repository:127.0.0.1:5000/a/b:pull,push";
  assertEquals(parseScopes(text).map(formatScope), [text]);
});

Deno.test("scope: grants by type, name and action; * grants all", () => {
  const access = [
    { type: "repository", name: "a", actions: ["pull"] },
    { type: "repository", name: "b", actions: ["*"] },
    { type: "registry", name: "catalog", actions: ["*"] },
  ];
  assert(grants(access, "repository", "a", "pull"));
  assert(!grants(access, "repository", "a", "push"));
  assert(grants(access, "repository", "b", "delete"));
  assert(!grants(access, "repository", "c", "pull"));
  assert(!grants(access, "registry", "a", "pull"));
  assert(grants(access, "registry", "catalog", "*"));
});

Deno.test("scope: access claim shape", () => {
  assertEquals(readAccessClaim(undefined), []);
  assertEquals(readAccessClaim([{ type: "repository", name: "a", actions: ["pull"] }]), [
    { type: "repository", name: "a", actions: ["pull"] },
  ]);
  assertEquals(readAccessClaim({}), undefined);
  assertEquals(readAccessClaim([{ type: "repository", name: "a", actions: "pull" }]), undefined);
  assertEquals(readAccessClaim([{ type: "repository", actions: [] }]), undefined);
});

Deno.test("scope: what a challenge announces per action", () => {
  assertEquals(scopeFor("push", "a/b"), {
    type: "repository",
    name: "a/b",
    actions: ["pull", "push"],
  });
  assertEquals(scopeFor("pull", "a")?.actions, ["pull"]);
  assertEquals(scopeFor("delete", "a")?.actions, ["delete"]);
  assertEquals(scopeFor("catalog", undefined), {
    type: "registry",
    name: "catalog",
    actions: ["*"],
  });
  assertEquals(scopeFor("pull", "../x"), undefined);
});
