// DOM helpers for the UI's pages: elements from plain calls (text is always text, never HTML),
// icons, copy buttons, the toast, a confirmation dialog and table cells that label themselves.

/**
 * An element: `h("a", { href, class: "x", onclick }, "text", child, [more])`. Strings become text
 * nodes, null and false are skipped; `on*` props are listeners, others attributes.
 */
export function h(tag, props, ...children) {
  const svg = tag === "svg" || tag === "path" || tag === "polyline" || tag === "line" ||
    tag === "rect" || tag === "circle";
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") {
      for (const [name, v] of Object.entries(value)) el.style.setProperty(name, v);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Appends children as `h` does (nested arrays flattened, null and false skipped). */
export function fill(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const ICONS = {
  search: ["M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z", "M21 21l-4.3-4.3"],
  copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
  trash: ["M3 6h18", "M8 6V4h8v2", "M6 6l1 14h10l1-14"],
  check: ["M20 6L9 17l-5-5"],
  refresh: ["M21 12a9 9 0 1 1-3-6.7L21 8", "M21 3v5h-5"],
  files: ["M14 3H6v18h12V7z", "M14 3v4h4"],
  compare: ["M7 4v16", "M17 4v16", "M3 8h8", "M13 16h8"],
  out: ["M15 3h4v18h-4", "M10 17l5-5-5-5", "M15 12H3"],
};

export function icon(name) {
  return h(
    "svg",
    { class: "i", viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" },
    (ICONS[name] ?? []).map((d) => h("path", { d })),
  );
}

let toastTimer;
/** A short message at the bottom of the screen, also read out (the element is a live region). */
export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 1800);
}

/** Copies text: the Clipboard API where the page is a secure context, else a selected field. */
export async function copyText(text) {
  if (navigator.clipboard && globalThis.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const field = h("textarea", { class: "visually-hidden", readonly: true });
  field.value = text;
  document.body.append(field);
  field.select();
  const ok = document.execCommand("copy");
  field.remove();
  if (!ok) throw new Error("copy refused");
}

/** A button that copies `text`; `label` names it for screen readers (what is copied). */
export function copyButton(text, label, options = {}) {
  const button = h(
    "button",
    {
      type: "button",
      class: `icon ${options.class ?? ""}`.trim(),
      "aria-label": label,
      title: label,
      onclick: async () => {
        try {
          await copyText(text);
          toast("Copied to the clipboard");
        } catch {
          toast("Could not copy: select the text instead");
        }
      },
    },
    icon("copy"),
    options.text ? h("span", null, options.text) : null,
  );
  return button;
}

/** A command line in a box with its copy button. */
export function commandBox(command, label) {
  return h("div", { class: "command" }, h("code", null, command), copyButton(command, label));
}

/**
 * Asks before something irreversible; resolves true when confirmed. A native modal dialog:
 * focus stays inside, Escape cancels, focus returns to where it was.
 */
export function confirmDialog({ title, body, confirm }) {
  return new Promise((resolve) => {
    const cancelButton = h("button", { type: "button", value: "cancel" }, "Cancel");
    const confirmButton = h("button", { type: "button", class: "danger solid" }, confirm);
    const titleId = `dialog-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      "dialog",
      { "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      body,
      h("div", { class: "buttons" }, cancelButton, confirmButton),
    );
    const finish = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancelButton.addEventListener("click", () => finish(false));
    confirmButton.addEventListener("click", () => finish(true));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}

/** A table whose rows turn into labelled cards on narrow screens (`td[data-label]`). */
export function table({ columns, rows, caption, className = "" }) {
  const head = h(
    "thead",
    null,
    h(
      "tr",
      null,
      columns.map((column) =>
        column.header instanceof Node ? column.header : h("th", {
          scope: "col",
          class: column.num ? "num" : column.className === "actions" ? "actions" : null,
        }, column.label)
      ),
    ),
  );
  const body = h(
    "tbody",
    null,
    rows.map((row) =>
      h(
        "tr",
        { class: row.className ?? null },
        columns.map((column, i) => {
          const cell = row.cells[i];
          return h("td", {
            "data-label": column.label,
            class: [column.num ? "num" : "", column.className ?? ""].join(" ").trim() || null,
          }, cell);
        }),
      )
    ),
  );
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: `stack ${className}`.trim() },
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      head,
      body,
    ),
  );
}

/** A link inside the app (the router takes the click). */
export function link(href, ...children) {
  return h("a", { href }, ...children);
}

/** Breadcrumbs: [[label, href], …, label]. */
export function crumbs(items) {
  const parts = [];
  items.forEach((item, i) => {
    if (i > 0) parts.push(h("span", { "aria-hidden": "true" }, "/"));
    parts.push(Array.isArray(item) ? link(item[1], item[0]) : h("span", null, item));
  });
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, parts);
}
