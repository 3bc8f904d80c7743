// A manifest's page: pull commands, config summary, layers with the history lines that made them,
// an index's platforms, annotations, referrers (signatures, SBOMs), the raw JSON, and deletes.

import { del, get, repo, session } from "../lib/api.js";
import {
  commandBox,
  confirmDialog,
  copyButton,
  fill,
  h,
  icon,
  link,
  table,
  toast,
} from "../lib/dom.js";
import {
  ago,
  artifactName,
  bytes,
  compressionOf,
  count,
  dateTime,
  mediaTypeName,
  platformName,
  plural,
  shortDigest,
} from "../lib/format.js";
import { jsonBlock } from "../lib/json.js";
import { kindPill, pageHead, platformList, repositoryCrumbs } from "../lib/parts.js";

const section = (title, countText, ...body) =>
  h(
    "section",
    { class: "section", "aria-label": title },
    h("h2", null, title, countText ? h("span", { class: "count" }, countText) : null),
    ...body,
  );

function pullCard(name, view) {
  const host = session.host;
  const byTag = view.reference.includes(":") ? null : view.reference;
  const commands = [
    ["docker", `docker pull ${host}/${name}${byTag ? `:${byTag}` : `@${view.digest}`}`],
    ["podman", `podman pull ${host}/${name}${byTag ? `:${byTag}` : `@${view.digest}`}`],
    ["by digest", `docker pull ${host}/${name}@${view.digest}`],
  ];
  const box = h("div");
  const tabs = commands.map(([label, command], i) =>
    h("button", {
      type: "button",
      class: "small",
      role: "tab",
      "aria-selected": String(i === 0),
      onclick: (event) => {
        for (const tab of tabs) {
          tab.setAttribute("aria-selected", String(tab === event.currentTarget));
        }
        box.replaceChildren(commandBox(command, `Copy: ${command}`));
      },
    }, label)
  );
  box.append(commandBox(commands[0][1], `Copy: ${commands[0][1]}`));
  return h(
    "div",
    { class: "card pull" },
    h("div", { class: "tabs", role: "tablist", "aria-label": "Pull command" }, tabs),
    box,
  );
}

function factsList(entries) {
  return h(
    "dl",
    { class: "facts" },
    entries.filter(([, value]) =>
      value !== undefined && value !== null && value !== "" &&
      !(Array.isArray(value) && value.length === 0)
    )
      .map(([label, value]) => [h("dt", null, label), h("dd", null, value)]),
  );
}

const list = (items, mono = true) =>
  h("ul", null, items.map((item) => h("li", { class: mono ? "mono" : null }, item)));

function configSection(config) {
  const s = config?.summary;
  if (!s) {
    return section(
      "Configuration",
      null,
      h("p", { class: "card empty" }, "The image config could not be read."),
    );
  }
  const labels = Object.entries(s.labels ?? {}).map(([key, value]) => `${key}=${value}`);
  return section(
    "Configuration",
    null,
    h(
      "div",
      { class: "card" },
      factsList([
        ["Entrypoint", s.entrypoint && h("code", null, JSON.stringify(s.entrypoint))],
        ["Command", s.cmd && h("code", null, JSON.stringify(s.cmd))],
        ["Working dir", s.workingDir && h("code", null, s.workingDir)],
        ["User", s.user && h("code", null, s.user)],
        ["Environment", s.env?.length ? list(s.env) : undefined],
        ["Ports", s.exposedPorts?.length ? s.exposedPorts.join(", ") : undefined],
        ["Volumes", s.volumes?.length ? list(s.volumes) : undefined],
        ["Labels", labels.length ? list(labels) : undefined],
        ["Stop signal", s.stopSignal],
        ["Platform", s.platform && platformName(s.platform)],
        [
          "Created",
          s.created &&
          h("time", { datetime: s.created }, `${dateTime(s.created)} (${ago(s.created)})`),
        ],
        ["Author", s.author],
        ["Config", h("span", { class: "digest" }, config.digest)],
      ]),
    ),
  );
}

function layersSection(name, layers) {
  const total = layers.reduce((sum, layer) => sum + layer.size, 0);
  return section(
    "Layers",
    `${plural(layers.length, "layer")} · ${bytes(total)}`,
    h(
      "div",
      { class: "card" },
      table({
        caption: "Layers",
        columns: [
          { label: "#", className: "lead" },
          { label: "Created by" },
          { label: "Compression" },
          { label: "Size", num: true },
          { label: "Files", className: "actions" },
        ],
        rows: layers.map((layer, i) => ({
          cells: [
            String(i + 1),
            layer.createdBy
              ? h("code", { class: "path", title: layer.digest }, layer.createdBy)
              : h("span", { class: "digest" }, shortDigest(layer.digest)),
            compressionOf(layer.mediaType),
            bytes(layer.size),
            /tar/.test(layer.mediaType)
              ? h(
                "a",
                {
                  class: "button small",
                  href: `/ui/files/${name}@${layer.digest}`,
                  "aria-label": `Files in layer ${i + 1}`,
                },
                icon("files"),
                "Files",
              )
              : null,
          ],
        })),
      }),
    ),
  );
}

function historySection(history) {
  if (!history?.length) return null;
  return section(
    "History",
    plural(history.length, "step"),
    h(
      "div",
      { class: "card" },
      table({
        caption: "History",
        columns: [{ label: "Step", className: "lead" }, { label: "Layer" }, {
          label: "Created",
          className: "nowrap",
        }],
        rows: history.map((line) => ({
          className: line.empty_layer ? "faint" : null,
          cells: [
            h("code", { class: "path" }, line.created_by ?? line.comment ?? "—"),
            line.empty_layer ? h("span", { class: "faint" }, "no layer") : "layer",
            line.created
              ? h(
                "time",
                { datetime: line.created, title: dateTime(line.created) },
                ago(line.created),
              )
              : "—",
          ],
        })),
      }),
    ),
  );
}

function platformsSection(name, children) {
  return section(
    "Platforms",
    plural(children.filter((c) => !c.attestation).length, "image"),
    h(
      "div",
      { class: "card" },
      table({
        caption: "Platforms",
        columns: [
          { label: "Platform", className: "name" },
          { label: "Digest" },
          { label: "Type" },
          { label: "Manifest", num: true },
        ],
        rows: children.map((child) => ({
          cells: [
            link(
              `/ui/r/${name}@${child.digest}`,
              child.attestation ? "attestation" : platformName(child.platform),
            ),
            h("span", { class: "digest", title: child.digest }, shortDigest(child.digest)),
            mediaTypeName(child.mediaType),
            bytes(child.size),
          ],
        })),
      }),
    ),
  );
}

function referrersSection(name, view) {
  const referrers = view.referrers ?? [];
  return section(
    "Referrers",
    referrers.length ? plural(referrers.length, "artifact") : null,
    h(
      "div",
      { class: "card" },
      referrers.length === 0
        ? h("p", { class: "empty" }, "No signatures, SBOMs or attestations refer to this manifest.")
        : table({
          caption: "Referrers",
          columns: [
            { label: "Kind", className: "lead" },
            { label: "Artifact type" },
            { label: "Digest" },
            { label: "Size", num: true },
            { label: "Created", className: "nowrap" },
          ],
          rows: referrers.map((r) => {
            const created = r.annotations?.["org.opencontainers.image.created"];
            return {
              cells: [
                link(
                  `/ui/r/${name}@${r.digest}`,
                  h("span", { class: "pill artifact" }, artifactName(r.artifactType)),
                ),
                h("code", { class: "path" }, r.artifactType ?? "—"),
                link(
                  `/ui/r/${name}@${r.digest}`,
                  h("span", { class: "digest" }, shortDigest(r.digest)),
                ),
                bytes(r.size),
                created
                  ? h("time", { datetime: created, title: dateTime(created) }, ago(created))
                  : "—",
              ],
            };
          }),
        }),
      view.moreReferrers
        ? h("p", { class: "muted pager" }, "More referrers exist: the API lists them all.")
        : null,
    ),
  );
}

function annotationsSection(annotations) {
  const entries = Object.entries(annotations ?? {});
  if (entries.length === 0) return null;
  return section(
    "Annotations",
    null,
    h("div", { class: "card" }, factsList(entries.map(([k, v]) => [h("code", null, k), v]))),
  );
}

function deleteSection(name, view, navigate) {
  if (!view.canDelete) return null;
  const isTag = !view.reference.includes(":");
  const remove = async (reference, what) => {
    const ok = await confirmDialog({
      title: isTag && reference === view.reference
        ? `Delete the tag ${reference}?`
        : "Delete this manifest?",
      body: [
        h("p", null, what),
        h(
          "p",
          { class: "muted" },
          "Garbage collection later frees the layers nothing else references.",
        ),
      ],
      confirm: isTag && reference === view.reference ? "Delete tag" : "Delete manifest",
    });
    if (!ok) return;
    try {
      await del(`${repo(name)}/manifests/${reference}`);
      toast("Deleted");
      navigate(`/ui/r/${name}`);
    } catch (error) {
      toast(error.message);
    }
  };
  return section(
    "Delete",
    null,
    h(
      "div",
      { class: "card pull" },
      h(
        "div",
        { class: "compare" },
        isTag
          ? h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () =>
                remove(
                  view.reference,
                  `The tag ${name}:${view.reference} will be removed; the manifest stays.`,
                ),
            },
            icon("trash"),
            `Delete tag ${view.reference}`,
          )
          : null,
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: () =>
              remove(
                view.digest,
                `The manifest ${shortDigest(view.digest)} and ${
                  view.tags.length
                    ? `its ${plural(view.tags.length, "tag")} (${view.tags.join(", ")})`
                    : "no tags"
                } will be removed from ${name}.`,
              ),
          },
          icon("trash"),
          "Delete manifest",
        ),
      ),
    ),
  );
}

export async function render({ container, params, navigate }) {
  const { name, reference } = params;
  const view = await get(`${repo(name)}/manifests/${reference}`);
  const isTag = !reference.includes(":");
  const title = isTag ? `${name}:${reference}` : `${name}@${shortDigest(view.digest)}`;
  const sub = [
    kindPill(view),
    h("span", null, mediaTypeName(view.mediaType)),
    h("span", null, bytes(view.size)),
    view.created ? h("span", null, `created ${ago(view.created)}`) : null,
  ].filter(Boolean);
  fill(
    container,
    pageHead({
      crumbs: repositoryCrumbs(name, isTag ? reference : shortDigest(view.digest)),
      title,
      sub: h("p", { class: "sub compare" }, sub),
    }),
    h(
      "div",
      { class: "grid-2" },
      pullCard(name, view),
      h(
        "div",
        { class: "card" },
        factsList([
          [
            "Digest",
            h(
              "span",
              { class: "inline" },
              h("code", { class: "path" }, view.digest),
              copyButton(view.digest, "Copy the digest", { class: "small" }),
            ),
          ],
          [
            "Tags",
            view.tags.length
              ? h(
                "span",
                { class: "platforms" },
                view.tags.map((tag) => h("a", { class: "tag", href: `/ui/r/${name}:${tag}` }, tag)),
              )
              : h("span", { class: "faint" }, "none"),
          ],
          ["Platforms", view.platforms.length ? platformList(view.platforms) : undefined],
          [
            "Subject",
            view.subject &&
            link(
              `/ui/r/${name}@${view.subject.digest}`,
              h("span", { class: "digest" }, shortDigest(view.subject.digest)),
            ),
          ],
          ["Artifact type", view.artifactType && h("code", null, view.artifactType)],
          ["Manifest", `${bytes(view.manifestSize)} · ${count(view.referrers.length)} referrers`],
        ]),
      ),
    ),
    view.kind === "index" ? platformsSection(name, view.manifests) : null,
    view.kind !== "index" && view.kind !== "artifact" ? configSection(view.config) : null,
    view.layers?.length ? layersSection(name, view.layers) : null,
    view.kind === "image" ? historySection(view.history) : null,
    annotationsSection(view.annotations),
    referrersSection(name, view),
    section(
      "Manifest",
      null,
      h(
        "details",
        { class: "card raw" },
        h("summary", null, "Raw JSON"),
        jsonBlock(view.raw, "The manifest as stored"),
      ),
    ),
    deleteSection(name, view, navigate),
  );
  return title;
}
