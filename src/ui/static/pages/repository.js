// A repository's page: its tags sortable by name or last push, each with digest, type, platforms,
// size and created time, a pull command to copy, a delete (when allowed), and a compare form.

import { del, get, query, repo, session } from "../lib/api.js";
import { clear, confirmDialog, copyButton, fill, h, icon, link, table, toast } from "../lib/dom.js";
import { ago, bytes, count, dateTime, plural, shortDigest } from "../lib/format.js";
import { kindPill, pageHead, platformList, repositoryCrumbs } from "../lib/parts.js";

const PAGE = 50;

export async function render({ container, params, url, navigate }) {
  const { name } = params;
  const state = {
    sort: url.searchParams.get("sort") === "pushed" ? "pushed" : "name",
    order: url.searchParams.get("order") ?? "",
    cursor: url.searchParams.get("cursor") ?? "",
  };
  const summary = h("p", { class: "sub" });
  const results = h("div", { class: "card", id: "tag-results" });
  const compareFrom = h("input", {
    id: "compare-from",
    list: "tag-names",
    placeholder: "from tag",
  });
  const compareTo = h("input", { id: "compare-to", list: "tag-names", placeholder: "to tag" });
  const tagNames = h("datalist", { id: "tag-names" });

  const order = () => state.order || (state.sort === "pushed" ? "desc" : "asc");
  let sequence = 0;
  const update = async () => {
    const mine = ++sequence;
    history.replaceState(
      null,
      "",
      `/ui/r/${name}${
        query({
          sort: state.sort === "name" ? "" : state.sort,
          order: state.order,
          cursor: state.cursor,
        })
      }`,
    );
    const data = await get(
      `${repo(name)}/tags${
        query({ sort: state.sort, order: order(), cursor: state.cursor, n: PAGE })
      }`,
    );
    if (mine !== sequence) return;
    const s = data.summary;
    summary.textContent = [
      plural(s.tags, "tag"),
      bytes(s.size),
      s.pushed ? `last push ${ago(s.pushed)}` : null,
    ].filter(Boolean).join(" · ");
    clear(tagNames).append(...data.items.map((row) => h("option", { value: row.tag })));
    if (!compareFrom.value && data.items.length > 1) {
      compareFrom.value = data.items[0].tag;
      compareTo.value = data.items[1].tag;
    }
    renderTags(data);
  };

  const sortHeader = (label, key) => {
    const active = state.sort === key;
    return h(
      "th",
      {
        scope: "col",
        "aria-sort": active ? (order() === "asc" ? "ascending" : "descending") : "none",
      },
      h("button", {
        type: "button",
        class: "sort",
        onclick: () => {
          if (state.sort === key) state.order = order() === "asc" ? "desc" : "asc";
          else {
            state.sort = key;
            state.order = "";
          }
          state.cursor = "";
          update().catch((error) => toast(error.message));
        },
      }, label),
    );
  };

  const removeTag = async (row) => {
    const ok = await confirmDialog({
      title: `Delete the tag ${row.tag}?`,
      body: [
        h("p", null, "The tag ", h("strong", null, `${name}:${row.tag}`), " will be removed."),
        h(
          "p",
          { class: "muted" },
          `Its manifest ${
            shortDigest(row.digest)
          } stays while other tags or digests name it; garbage collection frees what nothing references.`,
        ),
      ],
      confirm: "Delete tag",
    });
    if (!ok) return;
    try {
      await del(`${repo(name)}/manifests/${row.tag}`);
      toast(`Deleted the tag ${row.tag}`);
      await update();
    } catch (error) {
      toast(error.message);
    }
  };

  const renderTags = (data) => {
    clear(results);
    if (data.items.length === 0) {
      results.append(h("p", { class: "empty" }, "This repository has no tags."));
      return;
    }
    const host = session.host;
    results.append(table({
      caption: `Tags of ${name}`,
      columns: [
        { label: "Tag", className: "name", header: sortHeader("Tag", "name") },
        { label: "Digest" },
        { label: "Type" },
        { label: "Platforms" },
        { label: "Size", num: true },
        { label: "Created", className: "nowrap" },
        { label: "Pushed", className: "nowrap", header: sortHeader("Pushed", "pushed") },
        { label: "Actions", className: "actions" },
      ],
      rows: data.items.map((row) => ({
        cells: [
          link(`/ui/r/${name}:${row.tag}`, row.tag),
          h("span", { class: "digest", title: row.digest }, shortDigest(row.digest)),
          row.error ? h("span", { class: "pill" }, "unreadable") : kindPill(row),
          platformList(row.platforms ?? []),
          row.size === undefined ? "—" : bytes(row.size),
          row.created
            ? h("time", { datetime: row.created, title: dateTime(row.created) }, ago(row.created))
            : h("span", { class: "faint" }, "—"),
          h("time", { datetime: row.pushed, title: dateTime(row.pushed) }, ago(row.pushed)),
          [
            copyButton(
              `docker pull ${host}/${name}:${row.tag}`,
              `Copy the pull command for ${name}:${row.tag}`,
            ),
            data.canDelete
              ? h("button", {
                type: "button",
                class: "icon danger",
                "aria-label": `Delete the tag ${row.tag}`,
                title: `Delete the tag ${row.tag}`,
                onclick: () => removeTag(row),
              }, icon("trash"))
              : null,
          ],
        ],
      })),
    }));
    const first = data.offset + 1;
    if (data.total > data.items.length) {
      results.append(h(
        "div",
        { class: "pager" },
        h(
          "span",
          null,
          `${count(first)}–${count(data.offset + data.items.length)} of ${count(data.total)}`,
        ),
        h(
          "div",
          { class: "buttons" },
          h("button", {
            type: "button",
            disabled: data.offset === 0,
            onclick: () => {
              state.cursor = String(Math.max(0, data.offset - PAGE));
              update().catch((error) => toast(error.message));
            },
          }, "← Previous"),
          h("button", {
            type: "button",
            disabled: !data.next,
            onclick: () => {
              state.cursor = data.next;
              update().catch((error) => toast(error.message));
            },
          }, "Next →"),
        ),
      ));
    }
  };

  const sortChoices = [["name", "asc", "Tag A–Z"], ["name", "desc", "Tag Z–A"], [
    "pushed",
    "desc",
    "Newest push",
  ], ["pushed", "asc", "Oldest push"]];
  const sortSelect = h(
    "label",
    { class: "compare narrow-only" },
    h("span", { class: "muted" }, "Sort"),
    h(
      "select",
      {
        onchange: (event) => {
          const [sort, direction] = event.target.value.split(":");
          state.sort = sort;
          state.order = direction;
          state.cursor = "";
          update().catch((error) => toast(error.message));
        },
      },
      sortChoices.map(([sort, direction, label]) =>
        h("option", {
          value: `${sort}:${direction}`,
          selected: state.sort === sort && order() === direction,
        }, label)
      ),
    ),
  );
  const compare = h(
    "form",
    {
      class: "compare",
      "aria-label": "Compare two tags",
      onsubmit: (event) => {
        event.preventDefault();
        if (!compareFrom.value || !compareTo.value) return;
        navigate(`/ui/diff/${name}${query({ from: compareFrom.value, to: compareTo.value })}`);
      },
    },
    h("label", { for: "compare-from", class: "visually-hidden" }, "Compare from tag"),
    compareFrom,
    h("span", { class: "muted", "aria-hidden": "true" }, "→"),
    h("label", { for: "compare-to", class: "visually-hidden" }, "Compare to tag"),
    compareTo,
    h("button", { type: "submit" }, icon("compare"), "Compare"),
    tagNames,
  );

  fill(
    container,
    pageHead({
      crumbs: repositoryCrumbs(name),
      title: name,
      sub: summary,
      actions: [compare, sortSelect],
    }),
    results,
  );
  await update();
  return name;
}
