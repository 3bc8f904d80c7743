// Owns integrity checks: re-hash every blob, follow every link, and quarantine corrupt blobs.
// Implements `fsck [--repair]`: what distribution's offline tools check, on any driver.

import { digestOfStream } from "../digest.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import { manifestReferences } from "../oci/manifest.ts";
import {
  blobPath,
  layerLinkPath,
  referrerPath,
  revisionLinkPath,
  tagPath,
} from "../storage/paths.ts";
import { quarantineBlob } from "../store/blobs.ts";
import { listBlobs, listRepository, walkRepositories } from "../store/inventory.ts";
import { orMissing, type StoreState } from "../store/state.ts";

export interface FsckProblem {
  /** What is wrong, e.g. `blob.corrupt`, `tag.dangling`, `manifest.blob_missing`. */
  kind: string;
  /** The storage key where it shows. */
  key: string;
  message: string;
  /** What --repair did about it. */
  repaired?: string;
}

export interface FsckReport {
  blobs: number;
  bytes: number;
  repositories: number;
  manifests: number;
  tags: number;
  links: number;
  problems: FsckProblem[];
  durationMs: number;
}

/** Checks everything; with `repair`, quarantines corrupt blobs and drops links to missing ones. */
export async function runFsck(
  state: StoreState,
  options: { repair?: boolean; onProblem?: (problem: FsckProblem) => void } = {},
): Promise<FsckReport> {
  const t0 = performance.now();
  const { driver } = state;
  const report: FsckReport = {
    blobs: 0,
    bytes: 0,
    repositories: 0,
    manifests: 0,
    tags: 0,
    links: 0,
    problems: [],
    durationMs: 0,
  };
  const problem = (p: FsckProblem) => {
    report.problems.push(p);
    options.onProblem?.(p);
  };

  // Every blob, re-hashed. `good`: present and right (or corrupt, already reported).
  const good = new Set<string>();
  const listing = await listBlobs(driver);
  for (const key of listing.strays) {
    problem({ kind: "blob.stray", key, message: "not a blob key of the layout" });
  }
  for (const digest of listing.digests) {
    const key = blobPath(digest);
    const stat = await orMissing(driver.stat(key));
    const stream = stat && await orMissing(driver.read(key));
    if (!stat || !stream) continue; // deleted since the listing (GC or a delete)
    report.blobs++;
    report.bytes += stat.size;
    const actual = await digestOfStream(stream, digest.algorithm);
    if (actual === digest.value) {
      good.add(digest.value);
      continue;
    }
    // Reported once, here; until --repair moves it, links to it are not reported again.
    if (!options.repair) good.add(digest.value);
    const found: FsckProblem = {
      kind: "blob.corrupt",
      key,
      message: `content hashes to ${actual}`,
    };
    if (options.repair) found.repaired = `moved to ${await quarantineBlob(state, digest)}`;
    problem(found);
  }
  const listed = new Set(listing.digests.map((d) => d.value));
  const present = async (digest: Digest) =>
    good.has(digest.value) ||
    (!listed.has(digest.value) && await verifyLate(state, digest, good));

  // Every repository: tags → revisions → blobs, index children, referrers, layer links.
  for (const name of await walkRepositories(driver)) {
    report.repositories++;
    const repository = await listRepository(driver, name);
    const revisions = new Set(repository.revisions.map((d) => d.value));
    const layers = new Set(repository.layers.map((d) => d.value));
    for (const key of repository.strays) {
      problem({ kind: "repository.stray", key, message: "not a digest key of the layout" });
    }
    for (const [tag, digest] of repository.tags) {
      report.tags++;
      const key = tagPath(name, tag);
      if (!digest) problem({ kind: "tag.invalid", key, message: "does not hold a digest" });
      else if (!revisions.has(digest.value)) {
        problem({ kind: "tag.dangling", key, message: `names ${digest.value}, not in ${name}` });
      }
    }
    for (const digest of repository.revisions) {
      report.manifests++;
      const key = revisionLinkPath(name, digest);
      if (!await present(digest)) {
        problem({ kind: "manifest.missing", key, message: `bytes of ${digest.value} missing` });
        continue;
      }
      const bytes = await orMissing(driver.get(blobPath(digest)));
      const refs = bytes && manifestReferences(bytes);
      if (!refs) {
        if (bytes) problem({ kind: "manifest.invalid", key, message: "not a JSON object" });
        continue;
      }
      for (const blob of refs.blobs) {
        if (!await present(blob)) {
          problem({ kind: "manifest.blob_missing", key, message: `${blob.value} missing` });
        } else if (!layers.has(blob.value)) {
          problem({
            kind: "manifest.link_missing",
            key,
            message: `${blob.value} not linked into ${name}`,
          });
        }
      }
      for (const child of refs.manifests) {
        if (!revisions.has(child.value)) {
          problem({
            kind: "manifest.child_missing",
            key,
            message: `child ${child.value} not in ${name}`,
          });
        }
      }
    }
    for (const [subject, referrers] of repository.referrers) {
      for (const referrer of referrers) {
        if (!revisions.has(referrer.value)) {
          const key = referrerPath(name, parseDigest(subject)!, referrer);
          problem({ kind: "referrer.dangling", key, message: `${referrer.value} not in ${name}` });
        }
      }
    }
    for (const digest of repository.layers) {
      report.links++;
      if (await present(digest)) continue;
      const key = layerLinkPath(name, digest);
      const found: FsckProblem = { kind: "link.dangling", key, message: `${digest.value} missing` };
      if (options.repair) {
        await state.cache.write("link", `${name}@${digest.value}`, () => driver.delete(key), null);
        found.repaired = "link deleted";
      }
      problem(found);
    }
  }
  report.durationMs = Math.round(performance.now() - t0);
  return report;
}

/** A blob stored after the listing began: hashed now, so a fresh push is not reported missing. */
async function verifyLate(state: StoreState, digest: Digest, good: Set<string>) {
  const stream = await orMissing(state.driver.read(blobPath(digest)));
  if (!stream) return false;
  if (await digestOfStream(stream, digest.algorithm) !== digest.value) return false;
  good.add(digest.value);
  return true;
}

export function describeFsckReport(report: FsckReport): string {
  const lines = report.problems.map((p) =>
    `${p.kind} ${p.key}: ${p.message}${p.repaired ? ` (repaired: ${p.repaired})` : ""}`
  );
  lines.push(
    `checked ${report.blobs} blobs (${report.bytes} bytes), ${report.repositories} repositories, ` +
      `${report.manifests} manifests, ${report.tags} tags, ${report.links} layer links: ` +
      `${report.problems.length} problems` +
      (report.problems.some((p) => p.repaired)
        ? ` (${report.problems.filter((p) => p.repaired).length} repaired)`
        : ""),
  );
  return lines.join("\n");
}
