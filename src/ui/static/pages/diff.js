// Two tags (or digests) side by side: layers added, removed and shared with their sizes, and what
// changed in the config (entrypoint, command, user, each env variable and label). Indexes: by platform.

import { get, query, repo } from "../lib/api.js";
import { fill, h, link, table } from "../lib/dom.js";
import { bytes, compressionOf, plural, shortDigest } from "../lib/format.js";
import { pageHead, repositoryCrumbs } from "../lib/parts.js";

const MARK = { added: "+", removed: "−", shared: "=" };

export async function render({ container, params, url, navigate }) {
  const { name } = params;
  const from = url.searchParams.get("from") ?? "";
  const to = url.searchParams.get("to") ?? "";
  const platform = url.searchParams.get("platform") ?? "";
  const data = await get(`${repo(name)}/diff${query({ from, to, platform })}`);
  const ref = (
    side,
  ) => (side.reference.includes(":") ? shortDigest(side.reference) : side.reference);
  const sideLink = (side) =>
    link(`/ui/r/${name}${side.reference.includes(":") ? "@" : ":"}${side.reference}`, ref(side));
  const title = `${name}: ${ref(data.from)} → ${ref(data.to)}`;
  const delta = data.to.size - data.from.size;

  const platformPicker = data.platforms.length > 1
    ? h(
      "label",
      { class: "compare" },
      h("span", { class: "muted" }, "Platform"),
      h(
        "select",
        {
          onchange: (event) =>
            navigate(`/ui/diff/${name}${query({ from, to, platform: event.target.value })}`, {
              replace: true,
            }),
        },
        data.platforms.map((p) =>
          h("option", { value: p, selected: p === (data.to.platform ?? data.from.platform) }, p)
        ),
      ),
    )
    : null;

  fill(
    container,
    pageHead({
      crumbs: repositoryCrumbs(name, "compare"),
      title: [sideLink(data.from), h("span", { class: "muted" }, " → "), sideLink(data.to)],
      sub: h("p", { class: "sub" }, `${name}${data.to.platform ? ` · ${data.to.platform}` : ""}`),
      actions: [platformPicker],
    }),
    h(
      "div",
      { class: "stats" },
      stat(
        "Layers added",
        plural(data.totals.added.count, "layer"),
        bytes(data.totals.added.size),
        "added-text",
      ),
      stat(
        "Layers removed",
        plural(data.totals.removed.count, "layer"),
        bytes(data.totals.removed.size),
        "removed-text",
      ),
      stat(
        "Layers shared",
        plural(data.totals.shared.count, "layer"),
        bytes(data.totals.shared.size),
      ),
      stat(
        "Size",
        `${delta >= 0 ? "+" : "−"}${bytes(Math.abs(delta))}`,
        `${bytes(data.from.size)} → ${bytes(data.to.size)}`,
        delta > 0 ? "removed-text" : delta < 0 ? "added-text" : null,
      ),
    ),
    h(
      "section",
      { class: "section", "aria-label": "Config changes" },
      h(
        "h2",
        null,
        "Config changes",
        h("span", { class: "count" }, plural(data.changes.length, "change")),
      ),
      h(
        "div",
        { class: "card" },
        data.changes.length === 0
          ? h("p", { class: "empty" }, "The two configs agree on everything shown here.")
          : table({
            caption: "Config changes",
            columns: [{ label: "Field", className: "lead" }, { label: "Before" }, {
              label: "After",
            }],
            rows: data.changes.map((change) => ({
              cells: [
                h("code", null, change.field),
                change.before === undefined
                  ? h("span", { class: "faint" }, "—")
                  : h("span", { class: "change-before" }, change.before),
                change.after === undefined
                  ? h("span", { class: "faint" }, "—")
                  : h("span", { class: "change-after" }, change.after),
              ],
            })),
          }),
      ),
    ),
    h(
      "section",
      { class: "section", "aria-label": "Layers" },
      h("h2", null, "Layers"),
      h(
        "div",
        { class: "card" },
        table({
          caption: "Layers compared",
          columns: [
            { label: "Change", className: "lead" },
            { label: "Created by" },
            { label: "Compression" },
            { label: "Size", num: true },
          ],
          rows: data.layers.map((layer) => ({
            className: layer.status,
            cells: [
              h(
                "span",
                {
                  class: layer.status === "added"
                    ? "added-text"
                    : layer.status === "removed"
                    ? "removed-text"
                    : "muted",
                },
                h("span", { class: "status", "aria-hidden": "true" }, MARK[layer.status]),
                layer.status,
              ),
              h(
                "span",
                null,
                layer.createdBy ? h("code", { class: "path" }, layer.createdBy) : null,
                " ",
                link(
                  `/ui/files/${name}@${layer.digest}`,
                  h("span", { class: "digest" }, shortDigest(layer.digest)),
                ),
              ),
              compressionOf(layer.mediaType),
              bytes(layer.size),
            ],
          })),
        }),
      ),
    ),
  );
  return title;
}

function stat(label, value, note, tone) {
  return h(
    "div",
    { class: "card stat" },
    h("div", { class: "label" }, label),
    h("div", { class: `value ${tone ?? ""}`.trim() }, value),
    note ? h("div", { class: "note" }, note) : null,
  );
}
