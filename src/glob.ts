// Owns repository name patterns: the glob syntax of the access policy, retention, immutability, quotas.
// `*` and `?` stay within one path component, `**` crosses slashes (issue 5's policy syntax).

/** `*` and `?` stay within one path component; `**` crosses slashes. Anchored. */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === "*" && glob[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else source += char.replace(/[.+^${}()|[\]\\/-]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
