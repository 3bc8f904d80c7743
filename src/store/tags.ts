// Owns tags: resolving, writing and deleting them (with the cache), and one repository's listing.
// Implements distribution-spec v1.1 end-8a/8b (sorted, `n`/`last`) below HTTP.

import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import { REPOSITORY_MARKERS, repositoryPath, tagPath, tagsPath } from "../storage/paths.ts";
import type { Held } from "./locks.ts";
import { type Page, type PageOf, pageOf } from "./page.ts";
import { orMissing, type StoreState } from "./state.ts";

/**
 * The digest a tag names, from the cache (src/store/cache.ts) or storage; a pull's lookup. A hit
 * in this process's memory is the answer itself, not a promise.
 */
export function lookupTag(state: StoreState, name: string, tag: string) {
  return state.cache.read("tag", `${name}:${tag}`, () => readTag(state, name, tag));
}

/** As `lookupTag`, always a promise, undefined when there is no such tag. */
export async function resolveTag(
  state: StoreState,
  name: string,
  tag: string,
): Promise<Digest | undefined> {
  return await lookupTag(state, name, tag) ?? undefined;
}

/** The digest a tag names, as storage holds it now (under the tags lock: what a delete decides on). */
export async function readTag(state: StoreState, name: string, tag: string) {
  const bytes = await orMissing(state.driver.get(tagPath(name, tag)));
  return (bytes && parseDigest(new TextDecoder().decode(bytes))) || null;
}

/** Points a tag at a digest; callers hold the repository's tags lock (`held`). */
export function writeTag(state: StoreState, name: string, tag: string, digest: Digest, held: Held) {
  return state.cache.write("tag", `${name}:${tag}`, async () => {
    await held.confirm();
    await state.driver.put(tagPath(name, tag), new TextEncoder().encode(digest.value));
  }, digest);
}

/** Removes a tag; callers hold the repository's tags lock (`held`). */
export function deleteTag(state: StoreState, name: string, tag: string, held: Held) {
  return state.cache.write("tag", `${name}:${tag}`, async () => {
    await held.confirm();
    await state.driver.delete(tagPath(name, tag));
  }, null);
}

/** A repository's tags, sorted (code-unit order is ASCII order for tags, as distribution sorts). */
export async function sortedTags(state: StoreState, name: string): Promise<string[]> {
  return (await state.driver.list(tagsPath(name))).sort();
}

/** One page of a repository's tags; NAME_UNKNOWN when no such repository exists. */
export async function listTags(
  state: StoreState,
  name: string,
  page: Page,
): Promise<PageOf<string>> {
  const tags = await sortedTags(state, name);
  // A repository with tags exists; without, one listing tells an empty one from an unknown one
  // (a mere prefix of other repositories' names holds no marker of its own).
  if (tags.length === 0 && !await repositoryExists(state, name)) {
    throw new RegistryError("NAME_UNKNOWN", undefined, { detail: { name } });
  }
  return pageOf(tags, (tag) => tag, page);
}

/** Whether anything was ever pushed to the repository (a manifest, a layer, a referrer). */
export async function repositoryExists(state: StoreState, name: string): Promise<boolean> {
  const children = await state.driver.list(repositoryPath(name));
  return children.some((child) => REPOSITORY_MARKERS.includes(child));
}
