// Owns the storage layout: every key the registry reads or writes is built here, nowhere else.
// Pure functions over validated names, tags and digests (distribution's registry/storage/paths.go).

/**
 * The layout, under the driver's root:
 *
 * ```
 * blobs/<alg>/<hex[0:2]>/<hex>                 the bytes of every blob and manifest, stored once
 * repositories/<name>/                         <name> may span several path segments
 *   _layers/<alg>/<hex>                        the blob is linked into (served by) this repository
 *   _manifests/revisions/<alg>/<hex>           the manifest belongs to this repository; holds
 *                                              {"mediaType","size","subject"?} as JSON
 *   _manifests/tags/<tag>                      holds the digest the tag points to
 *   _referrers/<alg>/<hex>/<ralg>-<rhex>       a manifest whose subject is <alg>:<hex>; holds its
 *                                              descriptor (mediaType, size, artifactType, annotations)
 * _catalog/<name, "/" written "~">             empty: the repository has held a manifest; the
 *                                              catalog is one listing of this folder (S3: one
 *                                              request per 1000 repositories, not a tree walk)
 * _catalog/_indexed                            empty: every repository is in the folder above
 * _uploads/<uuid>/info                         {"name","startedAt"} of an upload session that
 *                                              has received bytes (before that, its signed
 *                                              Location is its only record: src/sessions.ts)
 * _uploads/<uuid>/data                         the bytes received so far
 * _secrets/upload-state                        the key that signs upload-session Locations
 * _pulls/<name, "/" written "~">               {"tags":{tag: ms},"manifests":{digest: ms}}: when
 *                                              each was last pulled (src/store/pulls.ts)
 * _pulls/_since                                when pulls began to be recorded (ms)
 * _quarantine/blobs/<alg>/<hex>                a blob whose bytes did not match its digest (fsck
 *                                              --repair, or a pull that caught it); never served
 * _events/<endpoint>/<batch>                   events not yet delivered to a webhook endpoint:
 *                                              {"events":[…]} in distribution's format; <batch> is
 *                                              <ms:13>-<seq:10>-<instance>-<count>, so a listing
 *                                              sorts oldest first and tells the outbox's size
 *                                              (src/ops/events/outbox.ts); deleted once delivered
 * _health/probe                                never written: /readyz stats it ("not found" is
 *                                              storage answering)
 * ```
 *
 * Name components never start with `_`, so `_layers`, `_manifests`, `_referrers` cannot collide
 * with a nested repository name; tags and digests never start with `.`, the drivers' temp prefix.
 */

import { type Digest, parseDigest } from "../grammar.ts";

export const REPOSITORIES = "repositories";
export const UPLOADS = "_uploads";
export const CATALOG = "_catalog";
export const BLOBS = "blobs";
export const QUARANTINE = "_quarantine";
export const UPLOAD_STATE_KEY = "_secrets/upload-state";
export const PULLS = "_pulls";
export const EVENTS = "_events";
export const HEALTH_PROBE_KEY = "_health/probe";

export const blobPath = (d: Digest) => `blobs/${d.algorithm}/${d.encoded.slice(0, 2)}/${d.encoded}`;

export const repositoryPath = (name: string) => `${REPOSITORIES}/${name}`;

/** The directories whose presence makes a path under `repositories/` a repository. */
export const LAYERS = "_layers";
export const MANIFESTS = "_manifests";
export const REFERRERS = "_referrers";
export const REPOSITORY_MARKERS: readonly string[] = [MANIFESTS, LAYERS, REFERRERS];

export const layerLinkPath = (name: string, d: Digest) =>
  `${repositoryPath(name)}/${LAYERS}/${d.algorithm}/${d.encoded}`;

export const manifestsPath = (name: string) => `${repositoryPath(name)}/${MANIFESTS}`;

export const revisionLinkPath = (name: string, d: Digest) =>
  `${manifestsPath(name)}/revisions/${d.algorithm}/${d.encoded}`;

export const tagsPath = (name: string) => `${manifestsPath(name)}/tags`;

export const tagPath = (name: string, tag: string) => `${tagsPath(name)}/${tag}`;

export const referrersPath = (name: string, subject: Digest) =>
  `${repositoryPath(name)}/${REFERRERS}/${subject.algorithm}/${subject.encoded}`;

/** The name of a referrer's entry under its subject's folder: `<alg>-<hex>`. */
export const referrerEntry = (referrer: Digest) => `${referrer.algorithm}-${referrer.encoded}`;

/** The referrer a `referrerEntry` names, or undefined for a stray name. */
export const parseReferrerEntry = (entry: string) => parseDigest(entry.replace("-", ":"));

export const referrerPath = (name: string, subject: Digest, referrer: Digest) =>
  `${referrersPath(name, subject)}/${referrerEntry(referrer)}`;

export const layersPath = (name: string) => `${repositoryPath(name)}/${LAYERS}`;

export const revisionsPath = (name: string) => `${manifestsPath(name)}/revisions`;

/** Every subject with referrers in the repository: `<this>/<alg>/<hex>/<ralg>-<rhex>`. */
export const allReferrersPath = (name: string) => `${repositoryPath(name)}/${REFERRERS}`;

export const quarantinePath = (d: Digest) => `${QUARANTINE}/blobs/${d.algorithm}/${d.encoded}`;

export const uploadPath = (uuid: string) => `${UPLOADS}/${uuid}`;

export const uploadInfoPath = (uuid: string) => `${uploadPath(uuid)}/info`;

export const uploadDataPath = (uuid: string) => `${uploadPath(uuid)}/data`;

/** The catalog entry of a repository (names never hold `~`, so the encoding is reversible). */
export const catalogEntryPath = (name: string) => `${CATALOG}/${name.replaceAll("/", "~")}`;

/** The entry that says the index is complete (written once the store has been walked). */
export const CATALOG_INDEXED = "_indexed";

/** The repository a `_catalog/` entry names, or undefined for the index's own entries. */
export const parseCatalogEntry = (entry: string) =>
  entry.startsWith("_") ? undefined : entry.replaceAll("~", "/");

export const catalogIndexedPath = `${CATALOG}/${CATALOG_INDEXED}`;

/** A repository's pull record (src/store/pulls.ts), named as its catalog entry is. */
export const pullsPath = (name: string) => `${PULLS}/${name.replaceAll("/", "~")}`;

/** When pull records began (names never start with `_`, so no repository's record is this). */
export const pullsSincePath = `${PULLS}/_since`;

/** An endpoint's outbox: one object per batch of undelivered events. */
export const eventsPath = (endpoint: string) => `${EVENTS}/${endpoint}`;

export const eventBatchPath = (endpoint: string, batch: string) =>
  `${eventsPath(endpoint)}/${batch}`;
