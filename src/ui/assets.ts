// Owns the UI's page and static files: embedded in the module graph, so a compiled binary has them.
// No spec section: served with validators (ETag) and the UI's security headers (src/ui/state.ts).

import { createHash } from "node:crypto";
import { RegistryError } from "../errors.ts";
import type { Context } from "../http.ts";
// Text imports: `deno compile` embeds them like code, and nothing reads the disk at run time.
import indexHtml from "./static/index.html" with { type: "text" };
import styleCss from "./static/style.css" with { type: "text" };
import iconSvg from "./static/icon.svg" with { type: "text" };
import appJs from "./static/app.js" with { type: "text" };
import apiJs from "./static/lib/api.js" with { type: "text" };
import domJs from "./static/lib/dom.js" with { type: "text" };
import formatJs from "./static/lib/format.js" with { type: "text" };
import jsonJs from "./static/lib/json.js" with { type: "text" };
import partsJs from "./static/lib/parts.js" with { type: "text" };
import repositoriesJs from "./static/pages/repositories.js" with { type: "text" };
import repositoryJs from "./static/pages/repository.js" with { type: "text" };
import imageJs from "./static/pages/image.js" with { type: "text" };
import filesJs from "./static/pages/files.js" with { type: "text" };
import diffJs from "./static/pages/diff.js" with { type: "text" };
import storageJs from "./static/pages/storage.js" with { type: "text" };
import loginJs from "./static/pages/login.js" with { type: "text" };

const JS = "text/javascript; charset=utf-8";

/** Every file under src/ui/static/, by its path there (tests/ui/assets_test.ts holds it to the folder). */
export const STATIC_FILES: Record<string, { body: string; type: string }> = {
  "index.html": { body: indexHtml, type: "text/html; charset=utf-8" },
  "style.css": { body: styleCss, type: "text/css; charset=utf-8" },
  "icon.svg": { body: iconSvg, type: "image/svg+xml" },
  "app.js": { body: appJs, type: JS },
  "lib/api.js": { body: apiJs, type: JS },
  "lib/dom.js": { body: domJs, type: JS },
  "lib/format.js": { body: formatJs, type: JS },
  "lib/json.js": { body: jsonJs, type: JS },
  "lib/parts.js": { body: partsJs, type: JS },
  "pages/repositories.js": { body: repositoriesJs, type: JS },
  "pages/repository.js": { body: repositoryJs, type: JS },
  "pages/image.js": { body: imageJs, type: JS },
  "pages/files.js": { body: filesJs, type: JS },
  "pages/diff.js": { body: diffJs, type: JS },
  "pages/storage.js": { body: storageJs, type: JS },
  "pages/login.js": { body: loginJs, type: JS },
};

const prepared = new Map(
  Object.entries(STATIC_FILES).map(([path, file]) => {
    const body = new TextEncoder().encode(file.body);
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    return [path, { body, type: file.type, etag }];
  }),
);

function serve(ctx: Context, path: string): Response {
  const file = prepared.get(path);
  if (!file) throw new RegistryError("UNSUPPORTED", "no such file", { status: 404 });
  const headers = new Headers({
    "content-type": file.type,
    "etag": file.etag,
    // Revalidated on each load: a new release's files are picked up at once.
    "cache-control": "no-cache",
  });
  if (ctx.request.headers.get("if-none-match") === file.etag) {
    return new Response(null, { status: 304, headers });
  }
  headers.set("content-length", String(file.body.length));
  return new Response(file.body, { headers });
}

/** GET / and the UI's page paths: the one page; its script routes by the path. */
export function servePage(ctx: Context): Promise<Response> {
  return Promise.resolve(serve(ctx, "index.html"));
}

/** GET /ui/static/<path>. */
export function serveStatic(ctx: Context): Promise<Response> {
  return Promise.resolve(serve(ctx, ctx.params.file ?? ""));
}
