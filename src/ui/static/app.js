// The UI's entry point: routes paths to pages (history API, no reloads), keeps the account area,
// and shows errors (sign in, not allowed, not found) in place of a page.

import { ApiError, loadSession, session, signOut } from "./lib/api.js";
import { clear, h, icon, link, toast } from "./lib/dom.js";
import * as repositories from "./pages/repositories.js";
import * as repository from "./pages/repository.js";
import * as image from "./pages/image.js";
import * as files from "./pages/files.js";
import * as diff from "./pages/diff.js";
import * as storage from "./pages/storage.js";
import * as login from "./pages/login.js";

const main = document.getElementById("main");

/** `team/app`, `team/app:1.0` or `team/app@sha256:…` (names hold no `:` or `@`). */
function splitReference(text) {
  const at = text.indexOf("@");
  if (at > 0) return { name: text.slice(0, at), reference: text.slice(at + 1) };
  const colon = text.indexOf(":");
  if (colon > 0) return { name: text.slice(0, colon), reference: text.slice(colon + 1) };
  return { name: text.replace(/\/+$/, "") };
}

function route(url) {
  const path = decodeURIComponent(url.pathname);
  if (path === "/") return { page: repositories, nav: "repositories" };
  if (path === "/ui/storage") return { page: storage, nav: "storage" };
  if (path === "/ui/login") return { page: login };
  let match = /^\/ui\/r\/(.+)$/.exec(path);
  if (match) {
    const target = splitReference(match[1]);
    return target.reference
      ? { page: image, params: target, nav: "repositories" }
      : { page: repository, params: target, nav: "repositories" };
  }
  match = /^\/ui\/files\/(.+)$/.exec(path);
  if (match) return { page: files, params: splitReference(match[1]), nav: "repositories" };
  match = /^\/ui\/diff\/(.+)$/.exec(path);
  if (match) return { page: diff, params: { name: match[1] }, nav: "repositories" };
  return undefined;
}

let current = 0;

/** Shows the page for the address bar's URL. `focus`: move focus to its heading (navigation). */
async function show(focus) {
  const token = ++current;
  const url = new URL(location.href);
  const target = route(url);
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === target?.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const container = h("div");
  let title = "Not found";
  try {
    await loadSession().catch(() => {});
    renderAccount();
    if (!target) throw new ApiError(404, "NOT_FOUND", "There is no page at this address.");
    const timer = setTimeout(() => {
      if (token === current) {
        clear(main).append(
          h("p", { class: "muted loading" }, h("span", { class: "spinner" }), " Loading…"),
        );
      }
    }, 150);
    try {
      title = await target.page.render({ container, params: target.params ?? {}, url, navigate });
    } finally {
      clearTimeout(timer);
    }
  } catch (error) {
    if (token !== current) return;
    title = errorView(clear(container), error);
  }
  if (token !== current) return;
  clear(main).append(...container.childNodes);
  document.title = title ? `${title} · Simple Registry` : "Simple Registry";
  const autofocus = main.querySelector("[autofocus]");
  if (autofocus) autofocus.focus();
  else if (focus) (main.querySelector("h1") ?? main).focus?.();
}

/** A page-sized message for a failed load; returns the page title. */
function errorView(container, error) {
  const here = location.pathname;
  if (error instanceof ApiError && error.status === 401) {
    container.append(
      h(
        "div",
        { class: "card error-box" },
        h("h1", { tabindex: "-1" }, "Sign in to continue"),
        h(
          "p",
          { class: "muted" },
          session.signIn
            ? "This registry shows its repositories to signed-in users."
            : "This registry signs users in through its token server; the web interface shows only what anonymous users may see.",
        ),
        session.signIn
          ? h("p", null, link(`/ui/login?next=${encodeURIComponent(here)}`, "Sign in"))
          : null,
      ),
    );
    return "Sign in";
  }
  const [heading, text] = error instanceof ApiError && error.status === 403
    ? [
      "Not allowed",
      "Your account may not see this. Ask the registry's administrators for access.",
    ]
    : error instanceof ApiError && error.status === 404
    ? ["Not found", error.message]
    : ["Something went wrong", error.message ?? String(error)];
  container.append(
    h(
      "div",
      { class: "card error-box" },
      h("h1", { tabindex: "-1" }, heading),
      h("p", { class: "muted" }, text),
      h("p", null, link("/", "Back to the repositories")),
    ),
  );
  return heading;
}

function renderAccount() {
  const account = clear(document.getElementById("account"));
  if (session.auth === "none") return;
  if (session.user) {
    account.append(
      h("span", { class: "muted" }, "Signed in as ", h("strong", null, session.user)),
      h(
        "button",
        {
          type: "button",
          class: "small",
          onclick: async () => {
            try {
              await signOut();
              toast("Signed out");
              navigate("/");
            } catch (error) {
              toast(error.message);
            }
          },
        },
        icon("out"),
        "Sign out",
      ),
    );
  } else if (session.signIn && location.pathname !== "/ui/login") {
    const next = encodeURIComponent(location.pathname + location.search);
    account.append(h("a", { class: "button small", href: `/ui/login?next=${next}` }, "Sign in"));
  }
}

/** Goes to a path inside the app; `replace` keeps the history entry (filters, pages). */
export function navigate(path, { replace = false, focus = true } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  shown = location.pathname;
  return show(focus);
}

document.addEventListener("click", (event) => {
  const a = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (
    !a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
    event.shiftKey || event.altKey || a.target || a.hasAttribute("download")
  ) return;
  const url = new URL(a.href, location.href);
  if (
    url.origin !== location.origin || !(url.pathname === "/" || url.pathname.startsWith("/ui/"))
  ) {
    return;
  }
  if (url.pathname.startsWith("/ui/api/") || url.pathname.startsWith("/ui/static/")) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

let shown = location.pathname;
addEventListener("popstate", () => {
  // A jump to a fragment (the skip link) is no new page.
  const here = location.pathname;
  if (here === shown && location.hash) return;
  shown = here;
  show(true);
});
show(false);
