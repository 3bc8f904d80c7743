// The storage page: what the blob store holds, what sharing between repositories saves, the
// largest repositories, the most shared blobs, and what the next garbage collection would free.

import { get } from "../lib/api.js";
import { fill, h, icon, link, table } from "../lib/dom.js";
import { ago, bytes, count, dateTime, plural, shortDigest } from "../lib/format.js";
import { pageHead } from "../lib/parts.js";

function stat(label, value, note) {
  return h(
    "div",
    { class: "card stat" },
    h("div", { class: "label" }, label),
    h("div", { class: "value" }, value),
    note ? h("div", { class: "note" }, note) : null,
  );
}

const duration = (ms) => {
  const minutes = Math.round(ms / 60_000);
  return minutes >= 60 ? `${Math.round(minutes / 60)} h` : `${minutes} min`;
};

export async function render({ container, url, navigate }) {
  const fresh = url.searchParams.get("fresh") === "1";
  const data = await get(`/ui/api/storage${fresh ? "?fresh=1" : ""}`);
  if (fresh) history.replaceState(null, "", "/ui/storage");
  const registry = data.registry;
  const gc = registry?.gc;
  const savedShare = data.linkedBytes ? Math.round((data.savedBytes / data.linkedBytes) * 100) : 0;
  const largest = data.largest[0]?.bytes ?? 0;

  fill(
    container,
    pageHead({
      title: "Storage",
      sub: h(
        "p",
        { class: "sub" },
        "Measured ",
        h(
          "time",
          { datetime: data.computedAt, title: dateTime(data.computedAt) },
          ago(data.computedAt),
        ),
        ` in ${(data.durationMs / 1000).toFixed(1)} s`,
        registry ? "" : " · the repositories you may see",
      ),
      actions: [
        h(
          "button",
          {
            type: "button",
            onclick: () => navigate("/ui/storage?fresh=1", { replace: true, focus: false }),
          },
          icon("refresh"),
          "Measure again",
        ),
      ],
    }),
    h(
      "div",
      { class: "stats" },
      registry
        ? stat("Blob store", bytes(registry.stored.bytes), plural(registry.stored.blobs, "blob"))
        : stat("Blobs", bytes(data.uniqueBytes), plural(data.blobs, "blob")),
      stat(
        "Without sharing",
        bytes(data.linkedBytes),
        `${plural(data.repositories, "repository", "repositories")} added up`,
      ),
      stat(
        "Saved by sharing",
        bytes(data.savedBytes),
        `${savedShare}% · ${plural(data.sharedBlobs, "shared blob")}`,
      ),
      gc
        ? stat(
          "Next GC would free",
          bytes(gc.bytes + gc.uploadBytes),
          `${plural(gc.blobs, "blob")}, ${plural(gc.manifests, "manifest")}, ${
            plural(gc.uploads, "upload")
          }`,
        )
        : null,
    ),
    gc
      ? h(
        "p",
        { class: "muted section" },
        gc.skipped
          ? `The dry run skipped its sweep: ${gc.skipped}.`
          : `Dry run of garbage collection with a grace of ${duration(gc.grace)}${
            gc.untagged ? ", untagged manifests included" : ""
          }: ${
            gc.interval
              ? `it runs every ${duration(gc.interval)}`
              : "online GC is off (simple-registry gc runs it)"
          }${gc.spared ? `; ${plural(gc.spared, "young or in-use candidate")} spared` : ""}.`,
      )
      : null,
    h(
      "div",
      { class: "grid-2 section" },
      h(
        "section",
        { "aria-label": "Largest repositories" },
        h("h2", null, "Largest repositories"),
        h(
          "div",
          { class: "card" },
          data.largest.length === 0 ? h("p", { class: "empty" }, "No repositories yet.") : table({
            caption: "Largest repositories",
            columns: [
              { label: "Repository", className: "name" },
              { label: "Share" },
              { label: "Size", num: true },
            ],
            rows: data.largest.map((repo) => ({
              cells: [
                link(`/ui/r/${repo.name}`, repo.name),
                h(
                  "div",
                  { class: "bar", role: "presentation" },
                  h("span", {
                    style: { "--share": `${largest ? (repo.bytes / largest) * 100 : 0}%` },
                  }),
                ),
                bytes(repo.bytes),
              ],
            })),
          }),
        ),
      ),
      h(
        "section",
        { "aria-label": "Most shared blobs" },
        h("h2", null, "Most shared blobs"),
        h(
          "div",
          { class: "card" },
          data.mostShared.length === 0
            ? h("p", { class: "empty" }, "No blob is shared between repositories.")
            : table({
              caption: "Most shared blobs",
              columns: [
                { label: "Blob", className: "lead" },
                { label: "Repositories", num: true },
                { label: "Size", num: true },
                { label: "Saves", num: true },
              ],
              rows: data.mostShared.map((blob) => ({
                cells: [
                  h(
                    "span",
                    null,
                    h("span", { class: "digest", title: blob.digest }, shortDigest(blob.digest)),
                    h("br"),
                    h(
                      "span",
                      { class: "muted" },
                      blob.names.join(", "),
                      blob.repositories > blob.names.length ? ", …" : "",
                    ),
                  ),
                  count(blob.repositories),
                  bytes(blob.size),
                  bytes(blob.saved),
                ],
              })),
            }),
        ),
      ),
    ),
  );
  return "Storage";
}
