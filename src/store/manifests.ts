// Owns manifests: validated puts of exact bytes, gets by tag or digest, deletes of tags or revisions.
// Implements distribution-spec v1.1 end-3, end-7, end-9 and the subject/referrers rules below HTTP.

import { digestOf } from "../digest.ts";
import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import { log } from "../log.ts";
import {
  type Descriptor,
  type ParsedManifest,
  parseManifest,
  type Revision,
} from "../oci/manifest.ts";
import { blobPath, referrerPath, revisionLinkPath, tagPath, tagsPath } from "../storage/paths.ts";
import { blobSize, linkedBlobSize, quarantineBlob, requireDeletes } from "./blobs.ts";
import { addToCatalog } from "./catalog.ts";
import { digestLock, manifestLock, tagsLock } from "./locks.ts";
import { pin, unpin } from "./pins.ts";
import { mapPool } from "../pool.ts";
import { type CachedManifest, orMissing, readJson, type StoreState, writeJson } from "./state.ts";
import { recordPull } from "./pulls.ts";
import { deleteTag, lookupTag, readTag, writeTag } from "./tags.ts";

/** A manifest reference: a tag or a digest (src/grammar.ts parseReference). */
export type Reference = { tag: string } | { digest: Digest };

/** A manifest as a GET answers it. */
export interface StoredManifest extends CachedManifest {
  digest: Digest;
}

/** References checked at once while a manifest PUT verifies them. */
const CHECK_POOL = 16;

/** A repository's manifest by tag or digest, or undefined. */
export async function getManifest(
  state: StoreState,
  name: string,
  reference: Reference,
): Promise<StoredManifest | undefined> {
  // A hit in this process's cache is an answer, not a promise: awaited only when it is one.
  let digest: Digest | null;
  if ("digest" in reference) digest = reference.digest;
  else {
    const found = lookupTag(state, name, reference.tag);
    digest = found instanceof Promise ? await found : found;
  }
  if (!digest) return undefined;
  const found = state.cache.read(
    "manifest",
    `${name}@${digest.value}`,
    () => readManifest(state, name, digest),
  );
  const manifest = found instanceof Promise ? await found : found;
  if (!manifest) return undefined;
  recordPull(state, name, digest, "tag" in reference ? reference.tag : undefined);
  return { ...manifest, digest };
}

async function readManifest(
  state: StoreState,
  name: string,
  digest: Digest,
): Promise<CachedManifest | null> {
  const revision = await readJson<Revision>(state, revisionLinkPath(name, digest));
  const bytes = revision && await orMissing(state.driver.get(blobPath(digest)));
  if (!revision || !bytes) return null;
  // Stored manifests are small: each read from storage is checked (microseconds), on S3 too.
  const actual = digestOf(bytes, digest.algorithm);
  if (actual !== digest.value) {
    log.error("manifest corrupt on read", { "blob.digest": digest.value, "blob.actual": actual });
    await quarantineBlob(state, digest);
    return null;
  }
  return { mediaType: revision.mediaType, bytes };
}

/**
 * Stores a manifest's exact bytes under a tag or its digest, once everything it references is in
 * the repository. Resolves to its digest and subject (for `OCI-Subject`).
 */
export function putManifest(
  state: StoreState,
  name: string,
  reference: Reference,
  body: Uint8Array<ArrayBuffer>,
  contentType: string | null,
): Promise<{ digest: Digest; subject?: Digest }> {
  return writeManifest(state, name, reference, body, contentType, true);
}

/**
 * Stores a manifest fetched from elsewhere (a pull-through cache): its exact bytes under its
 * digest (checked against a digest reference) and the tag, like a PUT, except that what it
 * references need not be here: a cache fetches children and layers when a client asks for them.
 * Resolves to the manifest as a GET answers it.
 */
export async function adoptManifest(
  state: StoreState,
  name: string,
  reference: Reference,
  body: Uint8Array<ArrayBuffer>,
  contentType: string | null,
): Promise<StoredManifest> {
  const { digest, mediaType } = await writeManifest(
    state,
    name,
    reference,
    body,
    contentType,
    false,
  );
  return { digest, mediaType, bytes: body };
}

async function writeManifest(
  state: StoreState,
  name: string,
  reference: Reference,
  body: Uint8Array<ArrayBuffer>,
  contentType: string | null,
  requireReferences: boolean,
): Promise<{ digest: Digest; subject?: Digest; mediaType: string }> {
  const algorithm = "digest" in reference ? reference.digest.algorithm : "sha256";
  const digest = parseDigest(digestOf(body, algorithm))!;
  if ("digest" in reference && reference.digest.value !== digest.value) {
    throw new RegistryError("DIGEST_INVALID", "manifest digest does not match the reference", {
      detail: { reference: reference.digest.value, actual: digest.value },
    });
  }
  const manifest = parseManifest(body, contentType);
  // Everything checked stays pinned against GC until the revision and tag are written.
  const pinned = requireReferences ? await requireReferencesExist(state, name, manifest) : [];
  try {
    await storeManifest(state, name, reference, digest, manifest, body, pinned);
  } finally {
    await unpin(state, pinned);
  }
  return { digest, subject: manifest.subject, mediaType: manifest.mediaType };
}

async function storeManifest(
  state: StoreState,
  name: string,
  reference: Reference,
  digest: Digest,
  manifest: ParsedManifest,
  body: Uint8Array<ArrayBuffer>,
  pinned: Digest[],
): Promise<void> {
  const revision: Revision = { mediaType: manifest.mediaType, size: body.length };
  if (manifest.subject) revision.subject = manifest.subject.value;
  // Bytes before the links that name them: a crash in between leaves only unreferenced bytes.
  await pin(state, digest, async () => {
    if (await blobSize(state, digest) === undefined) {
      await state.cache.write(
        "blob",
        digest.value,
        () => state.driver.put(blobPath(digest), body),
        body.length,
      );
    }
    return true;
  });
  pinned.push(digest);
  const cached = { mediaType: manifest.mediaType, bytes: body };
  await state.withLock(
    manifestLock(name, digest),
    () =>
      state.cache.write("manifest", `${name}@${digest.value}`, async () => {
        await writeJson(state, revisionLinkPath(name, digest), revision);
        if (manifest.subject) {
          const descriptor: Descriptor = {
            mediaType: manifest.mediaType,
            digest: digest.value,
            size: body.length,
            artifactType: manifest.artifactType,
            annotations: manifest.annotations,
          };
          await writeJson(state, referrerPath(name, manifest.subject, digest), descriptor);
        }
      }, cached),
  );
  await addToCatalog(state, name);
  if ("tag" in reference) {
    const tag = reference.tag;
    await state.withLock(tagsLock(name), (held) => writeTag(state, name, tag, digest, held));
  }
}

/**
 * What a delete by maintenance (retention) checks first, under the locks the delete takes, so a
 * push that came after it looked is never undone: it deletes only what it saw.
 */
export interface DeleteCondition {
  /** The tag file or revision record was last written at or before this time (ms). */
  writtenBy: number;
  /** A tag: it still names this digest. */
  digest?: Digest;
}

/**
 * Deletes a tag (the tag only), or a manifest by digest with every tag naming it and its
 * referrer entry. MANIFEST_UNKNOWN when there is no such tag or manifest. With a `condition`,
 * resolves to false (deleting nothing) when it does not hold, or when the tag or manifest is
 * gone; a manifest is then deleted only if no push holds it (src/store/pins.ts) — its tags are
 * the caller's to delete first, as a push that tags it rewrites its record.
 */
export async function deleteManifest(
  state: StoreState,
  name: string,
  reference: Reference,
  condition?: DeleteCondition,
): Promise<boolean> {
  requireDeletes(state);
  if (condition) return deleteIfUnchanged(state, name, reference, condition);
  if ("tag" in reference) {
    await state.withLock(tagsLock(name), async (held) => {
      if (!await readTag(state, name, reference.tag)) throw manifestUnknown(reference.tag);
      await deleteTag(state, name, reference.tag, held);
    });
    return true;
  }
  const digest = reference.digest;
  await state.withLock(
    tagsLock(name),
    (held) =>
      state.withLock(manifestLock(name, digest), async () => {
        const revision = await readJson<Revision>(state, revisionLinkPath(name, digest));
        if (!revision) throw manifestUnknown(digest.value);
        // Tags go first, so no tag ever names a manifest the repository no longer has.
        for (const tag of await state.driver.list(tagsPath(name))) {
          if ((await readTag(state, name, tag))?.value === digest.value) {
            await deleteTag(state, name, tag, held);
          }
        }
        await deleteRevision(state, name, digest, revision.subject);
      }),
  );
  return true;
}

function deleteIfUnchanged(
  state: StoreState,
  name: string,
  reference: Reference,
  condition: DeleteCondition,
): Promise<boolean> {
  const unchanged = async (key: string) => {
    const info = await orMissing(state.driver.stat(key));
    return info !== undefined && info.modified.getTime() <= condition.writtenBy;
  };
  if ("tag" in reference) {
    const { tag } = reference;
    return state.withLock(tagsLock(name), async (held) => {
      const current = await readTag(state, name, tag);
      if (!current || (condition.digest && current.value !== condition.digest.value)) return false;
      if (!await unchanged(tagPath(name, tag))) return false;
      await deleteTag(state, name, tag, held);
      return true;
    });
  }
  const { digest } = reference;
  // The digest's lock first, as GC's sweep: a push pinning it waits, or holds it and is spared.
  return state.withLock(
    digestLock(digest),
    () =>
      state.withLock(manifestLock(name, digest), async () => {
        if (await state.pins.isPinned(digest.value)) return false;
        const key = revisionLinkPath(name, digest);
        const revision = await readJson<Revision>(state, key);
        if (!revision || !await unchanged(key)) return false;
        await deleteRevision(state, name, digest, revision.subject);
        return true;
      }),
  );
}

/**
 * Removes a manifest from a repository: its referrer entry (under `subject`), then its revision
 * record (the order a crash leaves harmless). Its tags are the caller's.
 */
export async function deleteRevision(
  state: StoreState,
  name: string,
  digest: Digest,
  subjectValue: string | undefined,
): Promise<void> {
  const subject = subjectValue && parseDigest(subjectValue);
  await state.cache.write("manifest", `${name}@${digest.value}`, async () => {
    if (subject) await state.driver.delete(referrerPath(name, subject, digest));
    await state.driver.delete(revisionLinkPath(name, digest));
  }, null);
}

export function manifestUnknown(reference: string | undefined): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", undefined, { detail: { reference } });
}

/** Checks each reference under its digest's lock and pins it (src/store/pins.ts); the caller unpins. */
async function requireReferencesExist(
  state: StoreState,
  name: string,
  manifest: ParsedManifest,
): Promise<Digest[]> {
  const missing: string[] = [];
  const pinned: Digest[] = [];
  let failure: { reason: unknown } | undefined;
  await mapPool(manifest.references, CHECK_POOL, async ({ digest, needs }) => {
    try {
      const present = await pin(
        state,
        digest,
        async () =>
          needs === "blob"
            ? await linkedBlobSize(state, name, digest) !== undefined
            : await orMissing(state.driver.stat(revisionLinkPath(name, digest))) !== undefined,
      );
      if (present) pinned.push(digest);
      else missing.push(digest.value);
    } catch (reason) {
      failure ??= { reason };
    }
  });
  if (failure || missing.length > 0) {
    await unpin(state, pinned);
    throw failure ? failure.reason : new RegistryError(
      "MANIFEST_BLOB_UNKNOWN",
      "manifest references unknown blobs or manifests",
      { detail: { digests: missing } },
    );
  }
  return pinned;
}
