// View pieces more than one page draws: a manifest's kind, its platforms, a repository's crumbs.
// Kept apart from the pages so that pages never import each other.

import { crumbs, h } from "./dom.js";
import { artifactName, platformName } from "./format.js";

export function kindPill(facts) {
  if (facts.kind === "index") {
    return h("span", { class: "pill index" }, `Index · ${facts.platforms?.length ?? 0}`);
  }
  if (facts.kind === "artifact") {
    return h(
      "span",
      { class: "pill artifact", title: facts.artifactType ?? "" },
      artifactName(facts.artifactType),
    );
  }
  return h("span", { class: "pill" }, "Image");
}

export function platformList(platforms) {
  if (platforms.length === 0) return h("span", { class: "faint" }, "—");
  return h(
    "span",
    { class: "platforms" },
    platforms.map((p) => h("span", { class: "platform" }, platformName(p))),
  );
}

export function repositoryCrumbs(name, last) {
  const parts = name.split("/");
  const items = [["Repositories", "/"]];
  parts.forEach((part, i) => {
    const path = parts.slice(0, i + 1).join("/");
    if (i === parts.length - 1 && !last) items.push(part);
    else if (i === parts.length - 1) items.push([part, `/ui/r/${path}`]);
    else items.push([part, `/?ns=${encodeURIComponent(parts[0])}`]);
  });
  if (last) items.push(last);
  return crumbs(items);
}

/**
 * Every page's head: crumbs, the focusable title (text or nodes), a line under it, and the page's
 * actions on the right.
 */
export function pageHead({ crumbs = null, title, sub = null, actions = [] }) {
  return h(
    "div",
    { class: "page-head" },
    h("div", null, crumbs, h("h1", { tabindex: "-1" }, title), sub),
    actions,
  );
}
