// A layer's files: listed by the server from the streamed, decompressed tar (gzip, zstd or none),
// within its limits; filterable by path, with modes, sizes, link targets and whiteouts.

import { get, repo } from "../lib/api.js";
import { clear, copyButton, fill, h, icon, table } from "../lib/dom.js";
import { bytes, count, modeString, plural, shortDigest } from "../lib/format.js";
import { pageHead, repositoryCrumbs } from "../lib/parts.js";

/** Rows drawn at once; the filter narrows the rest. */
const SHOWN = 1000;

export async function render({ container, params }) {
  const { name, reference: digest } = params;
  const listing = await get(`${repo(name)}/blobs/${digest}/files`);
  const files = listing.entries.filter((entry) => entry.type === "file");
  const unpacked = files.reduce((sum, entry) => sum + entry.size, 0);
  const results = h("div", { class: "card" });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const input = h("input", {
    type: "search",
    placeholder: "Filter by path",
    autocomplete: "off",
    spellcheck: "false",
    "aria-controls": "file-results",
  });
  results.id = "file-results";

  const draw = () => {
    const filter = input.value.trim().toLowerCase();
    const matching = filter
      ? listing.entries.filter((entry) => entry.path.toLowerCase().includes(filter))
      : listing.entries;
    const shown = matching.slice(0, SHOWN);
    status.textContent = filter
      ? `${plural(matching.length, "entry", "entries")} ${
        matching.length === 1 ? "matches" : "match"
      }`
      : `${plural(listing.entries.length, "entry", "entries")}`;
    clear(results);
    if (shown.length === 0) {
      results.append(h("p", { class: "empty" }, "No entry matches."));
      return;
    }
    results.append(table({
      caption: "Files in the layer",
      className: "files",
      columns: [
        { label: "Path", className: "lead" },
        { label: "Mode", className: "nowrap" },
        { label: "Owner", className: "nowrap" },
        { label: "Size", num: true },
      ],
      rows: shown.map((entry) => ({
        className: entry.whiteout ? "removed" : null,
        cells: [
          h(
            "span",
            { class: "path" },
            entry.whiteout
              ? h("span", {
                class: "removed-text",
                title: "whiteout: deletes this path from the layers below",
              }, `${entry.path} (deleted below)`)
              : entry.path + (entry.type === "dir" ? "/" : ""),
            entry.link ? h("span", { class: "muted" }, ` → ${entry.link}`) : null,
          ),
          h("code", null, modeString(entry.type, entry.mode)),
          h("span", { class: "mono muted" }, `${entry.uid}:${entry.gid}`),
          entry.type === "file" ? bytes(entry.size) : "",
        ],
      })),
    }));
    if (matching.length > SHOWN) {
      results.append(
        h(
          "p",
          { class: "pager" },
          `The first ${count(SHOWN)} are shown: filter to find the others.`,
        ),
      );
    }
  };
  input.addEventListener("input", draw);

  const title = `Files in ${shortDigest(digest)}`;
  fill(
    container,
    pageHead({
      crumbs: repositoryCrumbs(name, `layer ${shortDigest(digest)}`),
      title: "Layer files",
      sub: h(
        "p",
        { class: "sub compare" },
        h("code", { class: "path" }, digest),
        copyButton(digest, "Copy the layer digest", { class: "small" }),
      ),
    }),
    h(
      "div",
      { class: "stats" },
      stat("Compression", listing.compression === "none" ? "none (tar)" : listing.compression),
      stat("Compressed", bytes(listing.size)),
      stat(
        "Files",
        count(files.length),
        `${plural(listing.entries.length, "entry", "entries")} in all`,
      ),
      stat(
        "Unpacked",
        bytes(unpacked),
        listing.size ? `${(unpacked / listing.size).toFixed(1)}× the layer` : null,
      ),
    ),
    listing.truncated
      ? h(
        "p",
        { class: "notice warn section" },
        listing.truncated === "entries"
          ? `Only the first ${count(listing.limits.entries)} entries are listed.`
          : `The listing stopped after ${bytes(listing.limits.bytes)} of uncompressed data.`,
      )
      : null,
    h(
      "div",
      { class: "toolbar section" },
      h(
        "label",
        { class: "search" },
        h("span", { class: "visually-hidden" }, "Filter files by path"),
        icon("search"),
        input,
      ),
      status,
    ),
    results,
  );
  draw();
  return title;
}

function stat(label, value, note) {
  return h(
    "div",
    { class: "card stat" },
    h("div", { class: "label" }, label),
    h("div", { class: "value" }, value),
    note ? h("div", { class: "note" }, note) : null,
  );
}
