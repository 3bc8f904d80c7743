// The repositories page: a filter that applies as you type, namespaces to pick, and pages of
// repositories with their tag count, size and last push (only the shown page's figures are read).

import { get, query } from "../lib/api.js";
import { clear, fill, h, icon, link, table } from "../lib/dom.js";
import { ago, bytes, count, dateTime, plural } from "../lib/format.js";
import { pageHead } from "../lib/parts.js";

const PAGE = 50;

export async function render({ container, url }) {
  const state = {
    q: url.searchParams.get("q") ?? "",
    ns: url.searchParams.get("ns") ?? "",
    last: url.searchParams.get("last") ?? "",
    /** Cursors of the pages before this one, for "Previous". */
    back: [],
  };
  const results = h("div", { class: "card" });
  const summary = h("p", { class: "sub", "aria-live": "polite" });
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Namespaces" });
  const input = h("input", {
    type: "search",
    id: "filter",
    placeholder: "Filter by name, e.g. team/ or api",
    value: state.q,
    autocomplete: "off",
    spellcheck: "false",
    "aria-controls": "repository-results",
  });
  results.id = "repository-results";

  let timer;
  let sequence = 0;
  const update = async ({ keepNamespaces = false } = {}) => {
    const mine = ++sequence;
    const address = `/${query({ q: state.q, ns: state.ns, last: state.last })}`;
    history.replaceState(null, "", address);
    let data;
    try {
      data = await get(
        `/ui/api/repositories${query({ q: state.q, ns: state.ns, last: state.last, n: PAGE })}`,
      );
    } catch (error) {
      if (mine !== sequence) return;
      clear(results).append(h("p", { class: "empty" }, error.message));
      return;
    }
    if (mine !== sequence) return;
    if (data.total !== undefined) state.total = data.total;
    if (data.namespaces && !keepNamespaces) state.namespaces = data.namespaces;
    summary.textContent = state.total === undefined
      ? ""
      : state.q || state.ns
      ? `${plural(state.total, "repository", "repositories")} ${
        state.total === 1 ? "matches" : "match"
      }`
      : plural(state.total, "repository", "repositories");
    renderChips();
    renderResults(data);
  };

  const renderChips = () => {
    clear(chips);
    const namespaces = state.namespaces ?? [];
    if (namespaces.length === 0) return;
    const chip = (label, value, n) =>
      h(
        "button",
        {
          type: "button",
          class: "chip",
          "aria-pressed": String(state.ns === value),
          onclick: () => {
            state.ns = state.ns === value ? "" : value;
            state.last = "";
            state.back = [];
            update({ keepNamespaces: true });
          },
        },
        label,
        n === undefined ? null : h("span", { class: "n" }, ` ${count(n)}`),
      );
    chips.append(chip("All", ""), ...namespaces.map((ns) => chip(ns.name, ns.name, ns.count)));
  };

  const renderResults = (data) => {
    clear(results);
    if (data.items.length === 0) {
      results.append(h(
        "div",
        { class: "empty" },
        state.q || state.ns
          ? "No repository matches this filter."
          : "No repositories yet. Push an image to see it here.",
      ));
      return;
    }
    const nameCell = (name) => {
      const slash = name.lastIndexOf("/");
      return link(
        `/ui/r/${name}`,
        slash > 0 ? h("span", { class: "muted" }, name.slice(0, slash + 1)) : null,
        name.slice(slash + 1),
      );
    };
    results.append(table({
      caption: "Repositories",
      columns: [
        { label: "Repository", className: "name" },
        { label: "Tags", num: true },
        { label: "Size", num: true },
        { label: "Last push", className: "nowrap" },
      ],
      rows: data.items.map((repo) => ({
        cells: [
          nameCell(repo.name),
          count(repo.tags),
          bytes(repo.size),
          repo.pushed
            ? h("time", { datetime: repo.pushed, title: dateTime(repo.pushed) }, ago(repo.pushed))
            : h("span", { class: "faint" }, "—"),
        ],
      })),
    }));
    const first = state.back.length * PAGE + 1;
    const pager = h(
      "div",
      { class: "pager" },
      h("span", null, `Showing ${count(first)}–${count(first + data.items.length - 1)}`),
      h(
        "div",
        { class: "buttons" },
        h("button", {
          type: "button",
          disabled: !state.last,
          onclick: () => {
            state.last = state.back.pop() ?? "";
            update({ keepNamespaces: true });
          },
        }, "← Previous"),
        h("button", {
          type: "button",
          disabled: !data.next,
          onclick: () => {
            state.back.push(state.last);
            state.last = data.next;
            update({ keepNamespaces: true });
          },
        }, "Next →"),
      ),
    );
    if (data.next || state.last) results.append(pager);
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q = input.value.trim();
      state.last = "";
      state.back = [];
      update({ keepNamespaces: true });
    }, 180);
  });

  fill(
    container,
    pageHead({ title: "Repositories", sub: summary }),
    h(
      "div",
      { class: "toolbar" },
      h(
        "label",
        { class: "search" },
        h("span", { class: "visually-hidden" }, "Filter repositories by name"),
        icon("search"),
        input,
      ),
      chips,
    ),
    results,
  );
  await update();
  return "Repositories";
}
