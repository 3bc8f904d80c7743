// Owns blobs as a repository sees them: linked size, verified reads, links, unlinks, quarantine.
// Implements the spec's rule that a repository serves only what was pushed or mounted into it.

import { digestOfStream } from "../digest.ts";
import { RegistryError } from "../errors.ts";
import type { Digest } from "../grammar.ts";
import { log } from "../log.ts";
import type { ByteRange } from "../storage/driver.ts";
import { blobPath, layerLinkPath, quarantinePath } from "../storage/paths.ts";
import { digestLock } from "./locks.ts";
import { orMissing, type StoreState } from "./state.ts";

/** Size of a stored blob, linked or not, or undefined: storage's answer (pushes decide on it). */
export async function blobSize(state: StoreState, digest: Digest): Promise<number | undefined> {
  return (await orMissing(state.driver.stat(blobPath(digest))))?.size;
}

/** Size of a blob this repository may serve, or undefined: storage's answer. */
export async function linkedBlobSize(
  state: StoreState,
  name: string,
  digest: Digest,
): Promise<number | undefined> {
  const link = await orMissing(state.driver.stat(layerLinkPath(name, digest)));
  return link && await blobSize(state, digest);
}

/** As `linkedBlobSize`, through the cache (src/store/cache.ts): a pull's HEAD or GET. */
export async function servedBlobSize(
  state: StoreState,
  name: string,
  digest: Digest,
): Promise<number | undefined> {
  const { cache, driver } = state;
  // Both at once: from a shared cache that is one round trip.
  const [link, size] = await Promise.all([
    cache.read(
      "link",
      `${name}@${digest.value}`,
      async () => await orMissing(driver.stat(layerLinkPath(name, digest))) ? true : null,
    ),
    cache.read("blob", digest.value, async () => await blobSize(state, digest) ?? null),
  ]);
  return link && size !== null ? size : undefined;
}

/**
 * Links a blob into a repository; call it holding the digest's lock. Touched for a running GC
 * pass (src/store/pins.ts), so the sweep keeps what was just linked.
 */
export async function linkBlob(state: StoreState, name: string, digest: Digest): Promise<void> {
  const link = layerLinkPath(name, digest);
  await state.cache.write(
    "link",
    `${name}@${digest.value}`,
    () => state.driver.put(link, new Uint8Array()),
    true,
  );
  await state.pins.touch(digest);
}

/** A blob's bytes are at this URL (valid for a short time): the client fetches them there. */
export interface BlobRedirect {
  redirect: string;
}

/** What a GET sends: the bytes, or where to fetch them (a blob read with redirects allowed). */
export type BlobBody = ReadableStream<Uint8Array> | BlobRedirect;

/**
 * Streams a linked blob, or a range of it. A full read is checked first (see `checkOnFirstRead`).
 * Straight from the driver: a file's stream is resource-backed, sent without passing through JS.
 * With `redirect` allowed, a whole blob of at least `state.redirect.minSize` bytes on storage
 * that can sign URLs (S3) is a URL instead: the bucket serves it.
 */
export function readBlob(
  state: StoreState,
  digest: Digest,
  range?: ByteRange,
): Promise<ReadableStream<Uint8Array>>;
export function readBlob(
  state: StoreState,
  digest: Digest,
  range: ByteRange | undefined,
  redirect: boolean,
): Promise<BlobBody>;
export async function readBlob(
  state: StoreState,
  digest: Digest,
  range?: ByteRange,
  redirect = false,
): Promise<BlobBody> {
  const { driver } = state;
  if (redirect && !range && state.redirect && driver.signedUrl) {
    const size = await state.cache.read(
      "blob",
      digest.value,
      async () => await blobSize(state, digest) ?? null,
    );
    if (size === null) throw blobUnknown(digest);
    if (size >= state.redirect.minSize) {
      return { redirect: await driver.signedUrl(blobPath(digest), state.redirect.expiresIn) };
    }
  }
  if (!range) await checkOnFirstRead(state, digest);
  const stream = await orMissing(driver.read(blobPath(digest), range));
  if (!stream) throw blobUnknown(digest);
  return stream;
}

/**
 * The first full read of a blob in this process hashes its stored bytes before any is sent
 * (later reads skip it, and `fsck` re-hashes everything); concurrent first reads share one hash.
 * Bad bytes are logged and quarantined, and the reader gets BLOB_UNKNOWN instead of a wrong blob.
 * Stores that checksum their own data (S3) are trusted: there a re-hash costs a fifth of pull
 * throughput and finds nothing S3 would not.
 */
async function checkOnFirstRead(state: StoreState, digest: Digest): Promise<void> {
  if (state.driver.checksummed || state.verified.get(digest.value)) return;
  let check = state.verifying.get(digest.value);
  if (!check) {
    check = verifyStored(state, digest).finally(() => state.verifying.delete(digest.value));
    state.verifying.set(digest.value, check);
  }
  if (!await check) {
    throw new RegistryError("BLOB_UNKNOWN", "blob failed its digest check and was quarantined", {
      detail: { digest: digest.value },
    });
  }
}

/** Hashes a stored blob; quarantines it when it is wrong. Resolves to whether it was right. */
async function verifyStored(state: StoreState, digest: Digest): Promise<boolean> {
  const stream = await orMissing(state.driver.read(blobPath(digest)));
  if (!stream) throw blobUnknown(digest);
  const actual = await digestOfStream(stream, digest.algorithm);
  if (actual === digest.value) {
    state.verified.set(digest.value, true);
    return true;
  }
  log.error("blob corrupt on read", { "blob.digest": digest.value, "blob.actual": actual });
  await quarantineBlob(state, digest);
  return false;
}

/** Removes a repository's link to a blob; the bytes stay for other repositories (and GC). */
export async function unlinkBlob(state: StoreState, name: string, digest: Digest): Promise<void> {
  requireDeletes(state);
  if (await linkedBlobSize(state, name, digest) === undefined) throw blobUnknown(digest);
  await state.cache.write(
    "link",
    `${name}@${digest.value}`,
    () => state.driver.delete(layerLinkPath(name, digest)),
    null,
  );
}

/**
 * Moves a blob out of service, under its digest's lock: nothing serves `_quarantine/`, and a
 * later push of the same digest stores good bytes again. Resolves to the quarantine key.
 */
export async function quarantineBlob(state: StoreState, digest: Digest): Promise<string> {
  const target = quarantinePath(digest);
  await state.withLock(digestLock(digest), async () => {
    await state.cache.write("blob", digest.value, async () => {
      await state.driver.delete(target);
      await orMissing(state.driver.move(blobPath(digest), target));
    }, null);
    state.verified.delete(digest.value);
    // A manifest whose bytes are quarantined must not stay cached either.
    await state.cache.clear();
  });
  log.error("blob quarantined", { "blob.digest": digest.value, "storage.key": target });
  return target;
}

export function requireDeletes(state: StoreState): void {
  if (!state.deleteEnabled) {
    throw new RegistryError("UNSUPPORTED", "deletes are disabled on this registry");
  }
}

export function blobUnknown(digest: Digest): RegistryError {
  return new RegistryError("BLOB_UNKNOWN", undefined, { detail: { digest: digest.value } });
}
