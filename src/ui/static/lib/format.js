// Formatting for the UI: sizes, times, digests, platforms, file modes, counts. Pure functions.

const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

/** Bytes in decimal units, as docker and podman print them: 1.2 MB. */
export function bytes(value) {
  if (!Number.isFinite(value)) return "—";
  let n = value;
  let unit = 0;
  while (Math.abs(n) >= 1000 && unit < UNITS.length - 1) {
    n /= 1000;
    unit++;
  }
  const digits = unit === 0 || Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return `${n.toFixed(digits)} ${UNITS[unit]}`;
}

export function count(value) {
  return new Intl.NumberFormat().format(value);
}

export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const STEPS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** "3 days ago"; `time` element text, the exact time in its title. */
export function ago(iso) {
  if (!iso) return "—";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return "—";
  for (const [unit, size] of STEPS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return relative.format(Math.round(seconds / size), unit);
    }
  }
  return "—";
}

export function dateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

/** `sha256:0123456789ab` — enough to tell digests apart on a page. */
export function shortDigest(digest) {
  if (!digest) return "";
  const [algorithm, hex] = digest.split(":");
  return `${algorithm}:${(hex ?? "").slice(0, 12)}`;
}

export function platformName(platform) {
  if (!platform) return "unknown";
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/** `drwxr-xr-x` from a tar entry's type and mode. */
export function modeString(type, mode) {
  const kind = { dir: "d", symlink: "l", char: "c", block: "b", fifo: "p" }[type] ?? "-";
  let text = kind;
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7;
    text += (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (bits & 1 ? "x" : "-");
  }
  return text;
}

/** What a manifest media type is, in words. */
export function mediaTypeName(mediaType) {
  return {
    "application/vnd.oci.image.manifest.v1+json": "OCI image manifest",
    "application/vnd.oci.image.index.v1+json": "OCI image index",
    "application/vnd.docker.distribution.manifest.v2+json": "Docker image manifest",
    "application/vnd.docker.distribution.manifest.list.v2+json": "Docker manifest list",
  }[mediaType] ?? mediaType;
}

/** A layer's compression from its media type. */
export function compressionOf(mediaType) {
  if (/zstd/.test(mediaType)) return "zstd";
  if (/gzip/.test(mediaType)) return "gzip";
  if (/tar$/.test(mediaType)) return "tar";
  return mediaType.split("/").pop();
}

/** A short name for an artifact type (signature, SBOM, attestation…). */
export function artifactName(type) {
  if (!type) return "artifact";
  if (/cosign.*sig|notary|signature/.test(type)) return "signature";
  if (/spdx|cyclonedx|sbom|syft/.test(type)) return "SBOM";
  if (/in-toto|attestation|provenance|slsa/.test(type)) return "attestation";
  if (/helm/.test(type)) return "Helm chart";
  return "artifact";
}
