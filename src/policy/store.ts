// Owns the policies that refuse writes: read-only mode, immutable tags and quotas, as a Store wrapper.
// Implements issue 16's write policies below HTTP; the API modules call the store as before.

import { digestOf } from "../digest.ts";
import { RegistryError } from "../errors.ts";
import { type Digest, parseDigest } from "../grammar.ts";
import type { DeleteCondition, Reference, Session, Store, UploadBody } from "../store/store.ts";
import { blobSize } from "../store/blobs.ts";
import { readTag, sortedTags } from "../store/tags.ts";
import type { LivePolicies, Policies } from "./policies.ts";
import type { Hold, Quotas } from "./quota.ts";
import { type ImmutableRule, immutableRule } from "./rules.ts";

export interface PolicyDeps {
  policies: LivePolicies;
  quotas: Quotas;
}

/**
 * The store with the write policies in front: in read-only mode every write is 405
 * UNSUPPORTED; an immutable tag never moves (400 TAG_INVALID) nor goes (403 DENIED) unless its
 * rule allows deletes; a push past a quota is 403 DENIED naming the quota and its usage.
 */
export function withPolicies(store: Store, deps: PolicyDeps): Store {
  const { quotas } = deps;
  const state = store.state;
  // Check-then-write of an immutable tag, one at a time per tag (across instances with Redis).
  const withLock = state.withLock;
  const writable = (): Policies => {
    const policies = deps.policies.current();
    if (policies.readOnly) throw readOnlyError();
    return policies;
  };

  /** Passes a body's chunks on, each first reserved in the quotas (DENIED stops the stream). */
  async function* counted(chunks: AsyncIterable<Uint8Array>, hold: Hold, size: { bytes: number }) {
    for await (const chunk of chunks) {
      hold.grow(chunk.length);
      size.bytes += chunk.length;
      yield chunk;
    }
  }

  /** Runs a write that links `digest` (known now or at its end), holding quota room meanwhile. */
  async function withQuota<T>(
    name: string,
    digest: string | undefined,
    bytes: number,
    write: (hold: Hold) => Promise<T>,
    linked: (result: T) => { digest: string; size: number } | undefined,
  ): Promise<T> {
    if (!quotas.covers(name)) return write(NO_HOLD);
    const hold = await quotas.admit(name, digest, bytes);
    let result: T;
    try {
      result = await write(hold);
    } catch (error) {
      hold.done();
      throw error;
    }
    hold.done(linked(result));
    return result;
  }

  const bodyWith = (body: UploadBody, hold: Hold, size: { bytes: number }): UploadBody =>
    hold === NO_HOLD ? body : { ...body, chunks: counted(body.chunks, hold, size) };

  return {
    ...store,
    quotas: () => quotas.usage(),
    blobs: {
      ...store.blobs,
      async delete(name, digest) {
        writable();
        await store.blobs.delete(name, digest);
        quotas.stale(name);
      },
    },
    uploads: {
      ...store.uploads,
      async start(name) {
        writable();
        return await store.uploads.start(name);
      },
      async find(name, uuid, signed) {
        writable();
        return await store.uploads.find(name, uuid, signed);
      },
      async cancel(session) {
        writable();
        await store.uploads.cancel(session);
      },
      async append(session: Session, body: UploadBody) {
        writable();
        // The session's bytes so far and this chunk must fit; nothing stays reserved after.
        const offset = quotas.covers(session.name)
          ? body.range?.start ?? await store.uploads.offset(session)
          : 0;
        const size = { bytes: 0 };
        return await withQuota(
          session.name,
          undefined,
          offset,
          (hold) => store.uploads.append(session, bodyWith(body, hold, size)),
          () => undefined,
        );
      },
      async finish(session, digest, body) {
        writable();
        const offset = quotas.covers(session.name) ? await store.uploads.offset(session) : 0;
        const size = { bytes: offset };
        await withQuota(
          session.name,
          digest.value,
          offset,
          (hold) => store.uploads.finish(session, digest, body && bodyWith(body, hold, size)),
          () => ({ digest: digest.value, size: size.bytes }),
        );
      },
      async commit(name, digest, chunks) {
        writable();
        const size = { bytes: 0 };
        await withQuota(
          name,
          digest.value,
          0,
          (hold) =>
            store.uploads.commit(
              name,
              digest,
              hold === NO_HOLD ? chunks : counted(chunks, hold, size),
            ),
          () => ({ digest: digest.value, size: size.bytes }),
        );
      },
      async mount(name, mount, from) {
        writable();
        const digest = parseDigest(mount);
        const bytes = digest && quotas.covers(name) ? await blobSize(state, digest) ?? 0 : 0;
        return await withQuota(
          name,
          digest?.value,
          bytes,
          () => store.uploads.mount(name, mount, from),
          (mounted) => mounted && { digest: mounted.value, size: bytes },
        );
      },
    },
    manifests: {
      ...store.manifests,
      async put(name, reference, body, contentType) {
        const policies = writable();
        const algorithm = "digest" in reference ? reference.digest.algorithm : "sha256";
        const digest = digestOf(body, algorithm);
        const put = () =>
          withQuota(
            name,
            digest,
            body.length,
            () => store.manifests.put(name, reference, body, contentType),
            (result) => ({ digest: result.digest.value, size: body.length }),
          );
        const rule = "tag" in reference && immutableRule(policies.immutable, name, reference.tag);
        if (!rule || !("tag" in reference)) return await put();
        const tag = reference.tag;
        return await withLock(`immutable:${name}:${tag}`, async () => {
          const current = await readTag(state, name, tag);
          if (current && current.value !== digest) throw immutableMove(name, tag, current, rule);
          return await put();
        });
      },
      async delete(name: string, reference: Reference, condition?: DeleteCondition) {
        const policies = writable();
        if (!condition || "tag" in reference) {
          await refuseImmutableDelete(policies.immutable, name, reference);
        }
        const deleted = await store.manifests.delete(name, reference, condition);
        quotas.stale(name);
        return deleted;
      },
    },
  };

  /** DENIED when the delete would take a tag an immutable rule keeps (its own or by digest). */
  async function refuseImmutableDelete(
    rules: readonly ImmutableRule[],
    name: string,
    reference: Reference,
  ): Promise<void> {
    if (!rules.some((rule) => rule.repositories.some((glob) => glob.test(name)))) return;
    const tags = "tag" in reference ? [reference.tag] : await tagsNaming(name, reference.digest);
    for (const tag of tags) {
      const rule = immutableRule(rules, name, tag);
      if (rule && !rule.allowDelete) {
        throw new RegistryError(
          "DENIED",
          `tag ${tag} of ${name} is immutable (immutable-tags rule ${rule.index}): ` +
            `it cannot be deleted${"digest" in reference ? ", nor the manifest it names" : ""}`,
          { detail: { name, tag, rule: rule.index } },
        );
      }
    }
  }

  async function tagsNaming(name: string, digest: Digest): Promise<string[]> {
    const tags: string[] = [];
    for (const tag of await sortedTags(state, name)) {
      if ((await readTag(state, name, tag))?.value === digest.value) tags.push(tag);
    }
    return tags;
  }
}

const NO_HOLD: Hold = { grow() {}, done() {} };

export function readOnlyError(): RegistryError {
  return new RegistryError(
    "UNSUPPORTED",
    "the registry is read-only: pushes and deletes are refused until it is writable again " +
      "(pulls work)",
  );
}

/** What ECR answers for a moved immutable tag: 400 TAG_INVALID, shown by docker as "tag invalid". */
function immutableMove(name: string, tag: string, current: Digest, rule: ImmutableRule) {
  return new RegistryError(
    "TAG_INVALID",
    `tag ${tag} already exists in ${name} and is immutable (immutable-tags rule ${rule.index}): ` +
      `it names ${current.value} and cannot be overwritten; push under a new tag`,
    { detail: { name, tag, digest: current.value, rule: rule.index } },
  );
}
