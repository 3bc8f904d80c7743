// JSON pretty-printed with its tokens coloured: spans built as DOM nodes, so text stays text.

import { h } from "./dom.js";

const TOKEN =
  /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],])|(\s+)/g;

/** A `<pre>` of `text` re-indented (when it parses) with keys, strings, numbers marked. */
export function jsonBlock(text, label) {
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // shown as stored
  }
  const nodes = [];
  let last = 0;
  for (const match of pretty.matchAll(TOKEN)) {
    if (match.index > last) nodes.push(pretty.slice(last, match.index));
    const [whole, string, colon, number, literal] = match;
    if (string !== undefined) {
      nodes.push(h("span", { class: colon ? "j-key" : "j-string" }, string));
      if (colon) nodes.push(colon);
    } else if (number !== undefined) nodes.push(h("span", { class: "j-number" }, number));
    else if (literal !== undefined) nodes.push(h("span", { class: "j-literal" }, literal));
    else nodes.push(whole);
    last = match.index + whole.length;
  }
  if (last < pretty.length) nodes.push(pretty.slice(last));
  return h("pre", { class: "json", tabindex: "0", "aria-label": label }, h("code", null, nodes));
}
