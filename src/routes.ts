// Owns the route table: which handler answers which method and path, first match wins.
// Implements the endpoint table of distribution-spec v1.1 (end-1 … end-13) plus Docker's extras.

import type { Handler } from "./http.ts";
import { checkVersion } from "./api/base.ts";
import { deleteBlob, getBlob } from "./api/blobs.ts";
import {
  cancelUpload,
  finishUpload,
  getUploadStatus,
  patchUpload,
  startUpload,
} from "./api/uploads.ts";
import { deleteManifest, getManifest, putManifest } from "./api/manifests.ts";
import { listTags } from "./api/tags.ts";
import { listReferrers } from "./api/referrers.ts";
import { listAllTags, listCatalog } from "./api/catalog.ts";
import { tokenEndpoint } from "./api/token.ts";
import { listQuotas } from "./api/quota.ts";
import type { Action } from "./auth/types.ts";
import { servePage, serveStatic } from "./ui/assets.ts";
import { listRepositories as uiRepositories, listTags as uiTags } from "./ui/browse.ts";
import { diffManifests } from "./ui/diff.ts";
import { listFiles } from "./ui/files.ts";
import { deleteManifest as uiDeleteManifest, describeManifest } from "./ui/image.ts";
import { getSession, signIn, signOut } from "./ui/session.ts";
import { storageReport } from "./ui/storage.ts";
import { liveness, metricsEndpoint, readiness } from "./ops/endpoints.ts";

export interface Endpoint {
  handler: Handler;
  action: Action;
}

export interface Route {
  /** The spec's endpoint id(s), or a name for Docker extras. */
  spec: string;
  pattern: URLPattern;
  /** The pattern's literal pieces: a path lacking one cannot match (checked before `exec`). */
  literals: string[];
  /** HEAD is served by GET's handler. */
  methods: Partial<Record<"GET" | "POST" | "PUT" | "PATCH" | "DELETE", Endpoint>>;
  /**
   * Part of the web UI (src/ui/): absent with --no-ui, authorized by the UI's session cookie
   * or the API's own credentials (src/ui/session.ts), answered with the UI's security headers.
   */
  ui?: true;
}

// `:name(.+)` is greedy: names may hold slashes, and the fixed tail after it decides the route.
const route = (spec: string, pathname: string, methods: Route["methods"]): Route => ({
  spec,
  pattern: new URLPattern({ pathname }),
  literals: pathname.split(/:\w+(?:\([^)]*\))?/).filter(Boolean),
  methods,
});
const uiRoute = (spec: string, pathname: string, methods: Route["methods"]): Route => ({
  ...route(spec, pathname, methods),
  ui: true,
});
const page = { GET: { handler: servePage, action: "public" } } as const;

export const ROUTES: Route[] = [
  route("end-1", "/v2/", { GET: { handler: checkVersion, action: "pull" } }),
  route("catalog", "/v2/_catalog", { GET: { handler: listCatalog, action: "catalog" } }),
  route("all-tags", "/v2/tags/list", { GET: { handler: listAllTags, action: "catalog" } }),
  route("quota", "/v2/_quota", { GET: { handler: listQuotas, action: "catalog" } }),
  route("end-8a/8b", "/v2/:name(.+)/tags/list", { GET: { handler: listTags, action: "pull" } }),
  route("end-12a/12b", "/v2/:name(.+)/referrers/:digest", {
    GET: { handler: listReferrers, action: "pull" },
  }),
  route("end-4a/4b/11", "/v2/:name(.+)/blobs/uploads/", {
    POST: { handler: startUpload, action: "push" },
  }),
  route("end-5/6/13/14", "/v2/:name(.+)/blobs/uploads/:uuid", {
    GET: { handler: getUploadStatus, action: "push" },
    PATCH: { handler: patchUpload, action: "push" },
    PUT: { handler: finishUpload, action: "push" },
    DELETE: { handler: cancelUpload, action: "push" },
  }),
  route("end-2/10", "/v2/:name(.+)/blobs/:digest", {
    GET: { handler: getBlob, action: "pull" },
    DELETE: { handler: deleteBlob, action: "delete" },
  }),
  route("end-3/7/9", "/v2/:name(.+)/manifests/:reference", {
    GET: { handler: getManifest, action: "pull" },
    PUT: { handler: putManifest, action: "push" },
    DELETE: { handler: deleteManifest, action: "delete" },
  }),
  // Outside /v2/: the built-in token server (issue 5); 404 unless `--auth token` runs it.
  route("token", "/auth/token", {
    GET: { handler: tokenEndpoint, action: "login" },
    POST: { handler: tokenEndpoint, action: "login" },
  }),
  // Operations (issue 15): probes for everyone; metrics for the `catalog` right (or 404 when
  // --metrics-addr serves them on their own listener).
  route("healthz", "/healthz", { GET: { handler: liveness, action: "public" } }),
  route("readyz", "/readyz", { GET: { handler: readiness, action: "public" } }),
  route("metrics", "/metrics", { GET: { handler: metricsEndpoint, action: "catalog" } }),
  // The web UI (issue 14): its page, its files, and the JSON its page reads (src/ui/).
  uiRoute("ui-page", "/", page),
  uiRoute("ui-page-storage", "/ui/storage", page),
  uiRoute("ui-page-login", "/ui/login", page),
  uiRoute("ui-page-repository", "/ui/r/:name(.+)", page),
  uiRoute("ui-page-files", "/ui/files/:name(.+)", page),
  uiRoute("ui-page-diff", "/ui/diff/:name(.+)", page),
  uiRoute("ui-static", "/ui/static/:file(.+)", {
    GET: { handler: serveStatic, action: "public" },
  }),
  uiRoute("ui-session", "/ui/api/session", {
    GET: { handler: getSession, action: "public" },
    POST: { handler: signIn, action: "login" },
    DELETE: { handler: signOut, action: "public" },
  }),
  uiRoute("ui-repositories", "/ui/api/repositories", {
    GET: { handler: uiRepositories, action: "catalog" },
  }),
  uiRoute("ui-storage", "/ui/api/storage", { GET: { handler: storageReport, action: "catalog" } }),
  uiRoute("ui-tags", "/ui/api/r/:name(.+)/tags", { GET: { handler: uiTags, action: "pull" } }),
  uiRoute("ui-diff", "/ui/api/r/:name(.+)/diff", {
    GET: { handler: diffManifests, action: "pull" },
  }),
  uiRoute("ui-files", "/ui/api/r/:name(.+)/blobs/:digest/files", {
    GET: { handler: listFiles, action: "pull" },
  }),
  uiRoute("ui-manifest", "/ui/api/r/:name(.+)/manifests/:reference", {
    GET: { handler: describeManifest, action: "pull" },
    DELETE: { handler: uiDeleteManifest, action: "delete" },
  }),
];

export interface Match {
  route: Route;
  params: Record<string, string | undefined>;
}

/** The route a path takes; the UI's routes only when `ui` (not with --no-ui). */
export function matchRoute(pathname: string, ui = true): Match | undefined {
  for (const route of ROUTES) {
    if (route.ui && !ui) continue;
    // URLPattern.exec is the costly part of a manifest HEAD; most routes fail this test first.
    if (!route.literals.every((literal) => pathname.includes(literal))) continue;
    const result = route.pattern.exec({ pathname });
    if (result) return { route, params: result.pathname.groups };
  }
  return undefined;
}

/** The Allow header of a route: its methods, with HEAD wherever GET is. */
export function allowedMethods(route: Route): string[] {
  const methods = Object.keys(route.methods);
  return methods.includes("GET") ? [...methods, "HEAD"] : methods;
}
