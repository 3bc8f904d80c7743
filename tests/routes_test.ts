// Unit tests of src/routes.ts: each path reaches the right route, spec id, params and Allow list.
// Names may hold slashes and even `blobs`/`manifests`/`tags` segments; the fixed tail decides.

import { allowedMethods, matchRoute, ROUTES } from "../src/routes.ts";
import { assert, assertEquals } from "./helpers.ts";

const D = `sha256:${"a".repeat(64)}`;
const UUID = "0f8fad5b-d9cb-469f-a165-70867728950e";

Deno.test("routes: each path to its route, spec id and params", () => {
  const cases: [string, string, Record<string, string>][] = [
    ["/v2/", "end-1", {}],
    ["/v2/_catalog", "catalog", {}],
    ["/v2/tags/list", "all-tags", {}],
    ["/v2/a/tags/list", "end-8a/8b", { name: "a" }],
    ["/v2/a/b/c/tags/list", "end-8a/8b", { name: "a/b/c" }],
    [`/v2/a/referrers/${D}`, "end-12a/12b", { name: "a", digest: D }],
    ["/v2/a/blobs/uploads/", "end-4a/4b/11", { name: "a" }],
    [`/v2/a/b/blobs/uploads/${UUID}`, "end-5/6/13/14", { name: "a/b", uuid: UUID }],
    [`/v2/a/blobs/${D}`, "end-2/10", { name: "a", digest: D }],
    ["/v2/a/manifests/latest", "end-3/7/9", { name: "a", reference: "latest" }],
    [`/v2/a/manifests/${D}`, "end-3/7/9", { name: "a", reference: D }],
    // Names containing route words.
    ["/v2/blobs/manifests/latest", "end-3/7/9", { name: "blobs", reference: "latest" }],
    [`/v2/manifests/blobs/${D}`, "end-2/10", { name: "manifests", digest: D }],
    [
      "/v2/x/manifests/y/manifests/v1",
      "end-3/7/9",
      { name: "x/manifests/y", reference: "v1" },
    ],
    [`/v2/x/blobs/y/blobs/${D}`, "end-2/10", { name: "x/blobs/y", digest: D }],
    ["/v2/x/blobs/uploads/y/blobs/uploads/", "end-4a/4b/11", { name: "x/blobs/uploads/y" }],
    ["/v2/tags/tags/list", "end-8a/8b", { name: "tags" }],
    ["/v2/a/tags/list/tags/list", "end-8a/8b", { name: "a/tags/list" }],
    ["/v2/_catalog/tags/list", "end-8a/8b", { name: "_catalog" }], // refused later: NAME_INVALID
    [`/v2/referrers/referrers/${D}`, "end-12a/12b", { name: "referrers", digest: D }],
  ];
  for (const [path, spec, params] of cases) {
    const match = matchRoute(path);
    assert(match, `${path} matches a route`);
    assertEquals(match.route.spec, spec, path);
    const got = Object.fromEntries(
      Object.entries(match.params).filter(([, v]) => v !== undefined),
    );
    assertEquals(got, params, `${path} params`);
  }
});

Deno.test("routes: the literal pre-check keeps each pattern's fixed pieces", () => {
  const literals = Object.fromEntries(ROUTES.map((r) => [r.spec, r.literals]));
  assertEquals(literals["end-3/7/9"], ["/v2/", "/manifests/"]);
  assertEquals(literals["end-5/6/13/14"], ["/v2/", "/blobs/uploads/"]);
  assertEquals(literals["end-1"], ["/v2/"]);
});

Deno.test("routes: unknown paths match nothing", () => {
  for (
    const path of [
      "/v2",
      "/v1/",
      "/v2/a",
      "/v2/a/",
      "/v2/a/blobs/",
      "/v2/a/manifests/",
      "/v2/a/tags",
      "/v2/a/tags/list/",
      "/v2/a/unknown/x",
      "/v2//manifests/x",
      "/v3/a/manifests/x",
    ]
  ) {
    assertEquals(matchRoute(path), undefined, path);
  }
});

Deno.test("routes: the web UI's paths, and none of them without the UI (--no-ui)", () => {
  const cases: [string, string, Record<string, string>][] = [
    ["/", "ui-page", {}],
    ["/ui/r/team/app", "ui-page-repository", { name: "team/app" }],
    ["/ui/r/team/app:1.0", "ui-page-repository", { name: "team/app:1.0" }],
    ["/ui/static/pages/image.js", "ui-static", { file: "pages/image.js" }],
    ["/ui/api/r/a/b/tags", "ui-tags", { name: "a/b" }],
    [`/ui/api/r/a/manifests/${D}`, "ui-manifest", { name: "a", reference: D }],
    [`/ui/api/r/x/tags/manifests/v1`, "ui-manifest", { name: "x/tags", reference: "v1" }],
    [`/ui/api/r/a/blobs/${D}/files`, "ui-files", { name: "a", digest: D }],
  ];
  for (const [path, spec, params] of cases) {
    const match = matchRoute(path);
    assert(match?.route.ui, `${path} is a UI route`);
    assertEquals(match.route.spec, spec, path);
    const got = Object.fromEntries(Object.entries(match.params).filter(([, v]) => v !== undefined));
    assertEquals(got, params, `${path} params`);
    assertEquals(matchRoute(path, false), undefined, `${path} without the UI`);
  }
  assertEquals(matchRoute("/ui/api/nothing"), undefined);
  assertEquals(matchRoute("/v2/a/manifests/v1", false)?.route.spec, "end-3/7/9");
});

Deno.test("routes: methods, actions and Allow (HEAD wherever GET is)", () => {
  const methodsOf = (path: string) => {
    const match = matchRoute(path)!;
    return {
      allow: allowedMethods(match.route).sort(),
      actions: Object.fromEntries(
        Object.entries(match.route.methods).map(([m, e]) => [m, e!.action]),
      ),
    };
  };
  assertEquals(methodsOf("/v2/"), { allow: ["GET", "HEAD"], actions: { GET: "pull" } });
  assertEquals(methodsOf("/v2/_catalog").actions, { GET: "catalog" });
  assertEquals(methodsOf(`/v2/a/blobs/${D}`), {
    allow: ["DELETE", "GET", "HEAD"],
    actions: { GET: "pull", DELETE: "delete" },
  });
  assertEquals(methodsOf("/v2/a/manifests/x"), {
    allow: ["DELETE", "GET", "HEAD", "PUT"],
    actions: { GET: "pull", PUT: "push", DELETE: "delete" },
  });
  assertEquals(methodsOf("/v2/a/blobs/uploads/"), { allow: ["POST"], actions: { POST: "push" } });
  assertEquals(methodsOf(`/v2/a/blobs/uploads/${UUID}`).allow, [
    "DELETE",
    "GET",
    "HEAD",
    "PATCH",
    "PUT",
  ]);
  assertEquals(methodsOf("/v2/a/tags/list").allow, ["GET", "HEAD"]);
  assertEquals(methodsOf(`/v2/a/referrers/${D}`).allow, ["GET", "HEAD"]);
});
