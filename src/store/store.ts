// Owns the Store: the registry's content as operations with no HTTP in them, the seam features wrap.
// Implements the content model of distribution-spec v1.1 (blobs, uploads, manifests, tags, referrers).

import type { Digest } from "../grammar.ts";
import type { Descriptor } from "../oci/manifest.ts";
import type { ByteRange } from "../storage/driver.ts";
import { type BlobBody, type BlobRedirect, readBlob, servedBlobSize, unlinkBlob } from "./blobs.ts";
import { listRepositories, type Visible } from "./catalog.ts";
import {
  adoptManifest,
  type DeleteCondition,
  deleteManifest,
  getManifest,
  putManifest,
  type Reference,
  type StoredManifest,
} from "./manifests.ts";
import type { Page, PageOf } from "./page.ts";
import { describeTags, describeUsage, type RepositoryUsage, type TagRecord } from "./describe.ts";
import { listReferrers, type ReferrersQuery } from "./referrers.ts";
import { createState, type StoreOptions, type StoreState } from "./state.ts";
import { type Ingest, ingestBlob } from "./ingest.ts";
import { listTags, sortedTags } from "./tags.ts";
import {
  appendToSession,
  cancelSession,
  commitBlob,
  findSession,
  finishSession,
  mountBlob,
  type Session,
  sessionOffset,
  startSession,
  type UploadBody,
} from "./uploads.ts";
import { mapPool } from "../pool.ts";

export type {
  BlobBody,
  BlobRedirect,
  ByteRange,
  DeleteCondition,
  Ingest,
  Page,
  PageOf,
  Reference,
  ReferrersQuery,
  RepositoryUsage,
  Session,
  StoredManifest,
  TagRecord,
  UploadBody,
  Visible,
};

/**
 * What the API, a proxy, a UI and policies call. A feature that changes how content is found or
 * kept wraps these operations (a pull-through cache overrides `manifests.get` and `blobs.read`
 * for its repositories); it never adds branches to the HTTP handlers.
 */
export interface Store {
  blobs: {
    /** Size of a blob the repository may serve, or undefined. */
    size(name: string, digest: Digest): Promise<number | undefined>;
    /** Its bytes (a full read is verified once per process); BLOB_UNKNOWN if gone meanwhile. */
    read(name: string, digest: Digest, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
    /**
     * What a GET sends, when the caller can answer a redirect: the bytes, or a short-lived URL
     * where storage serves them (`--s3-redirect`). A wrapper that serves its own bytes may
     * ignore `redirect` and return a stream.
     */
    read(
      name: string,
      digest: Digest,
      range: ByteRange | undefined,
      redirect: boolean,
    ): Promise<BlobBody>;
    /** Unlinks it from the repository; BLOB_UNKNOWN, or UNSUPPORTED when deletes are off. */
    delete(name: string, digest: Digest): Promise<void>;
  };
  uploads: {
    start(name: string): Promise<Session>;
    /** The session a request names; BLOB_UPLOAD_UNKNOWN otherwise. */
    find(name: string, uuid: string, signedState: string | null): Promise<Session>;
    offset(session: Session): Promise<number>;
    append(session: Session, body: UploadBody): Promise<number>;
    finish(session: Session, digest: Digest, body?: UploadBody): Promise<void>;
    cancel(session: Session): Promise<void>;
    /** Bytes whose digest is known, streamed into place and linked if they match. */
    commit(name: string, digest: Digest, chunks: AsyncIterable<Uint8Array>): Promise<void>;
    /**
     * Bytes whose digest is known, taken in while the caller hands them on elsewhere: hashed as
     * they arrive (`verified`), written behind them (`committed`); see src/store/ingest.ts.
     */
    ingest(name: string, digest: Digest, chunks: AsyncIterable<Uint8Array>): Ingest;
    mount(name: string, digest: string, from: string | null): Promise<Digest | undefined>;
  };
  manifests: {
    get(name: string, reference: Reference): Promise<StoredManifest | undefined>;
    put(
      name: string,
      reference: Reference,
      body: Uint8Array<ArrayBuffer>,
      contentType: string | null,
    ): Promise<{ digest: Digest; subject?: Digest }>;
    /**
     * A tag only, or a manifest by digest with its tags; MANIFEST_UNKNOWN, UNSUPPORTED. With a
     * condition (retention), only if nothing changed since it looked: false when it did.
     */
    delete(name: string, reference: Reference, condition?: DeleteCondition): Promise<boolean>;
    /**
     * A manifest fetched from elsewhere: its exact bytes (a digest reference is checked) and the
     * tag, without requiring what it references to be here (a cache fetches that on demand).
     */
    adopt(
      name: string,
      reference: Reference,
      body: Uint8Array<ArrayBuffer>,
      contentType: string | null,
    ): Promise<StoredManifest>;
  };
  /** One repository's tags; NAME_UNKNOWN for a repository never pushed to. */
  tags(name: string, page: Page): Promise<PageOf<string>>;
  referrers(name: string, subject: Digest, query: ReferrersQuery): Promise<PageOf<Descriptor>>;
  /** Repositories that hold manifests, those `visible` only. */
  catalog(page: Page, visible?: Visible): Promise<PageOf<string>>;
  /** A page of the catalog, each repository with its (sorted) tags. */
  catalogWithTags(
    page: Page,
    visible?: Visible,
  ): Promise<PageOf<{ name: string; tags: string[] }>>;
  /** Read-only figures for browsing (the web UI): when tags were pushed, what a repository holds. */
  describe: {
    /** Each tag's digest and last write; tags deleted meanwhile are left out. */
    tags(name: string, tags: readonly string[]): Promise<TagRecord[]>;
    /** The blobs linked into the repository with their sizes, and its manifest count. */
    usage(name: string): Promise<RepositoryUsage>;
  };
  /** Stored bytes per quota and what pushes hold (src/policy/quota.ts); none without quotas. */
  quotas(): Promise<QuotaUsage[]>;
  /** The state maintenance (GC, fsck, expiry) works on: driver, locks, pins, caches. */
  state: StoreState;
}

/** One quota's figures, for `GET /v2/_quota` and metrics. */
export interface QuotaUsage {
  /** The rule's globs (`team-a/**`), or the repository of a per-repository quota. */
  quota: string;
  /** The rule's place in `quotas:`. */
  rule: number;
  maxBytes: number;
  usedBytes: number;
  /** Held by pushes in flight. */
  reservedBytes: number;
  /** Distinct digests counted. */
  digests: number;
}

/** Repositories whose tags are listed at once for one page of `catalogWithTags`. */
const TAGS_POOL = 8;

export function createStore(options: StoreOptions): Store {
  const state = createState(options);
  function read(name: string, digest: Digest, range?: ByteRange): Promise<ReadableStream>;
  function read(
    name: string,
    digest: Digest,
    range: ByteRange | undefined,
    redirect: boolean,
  ): Promise<BlobBody>;
  function read(_name: string, digest: Digest, range?: ByteRange, redirect = false) {
    return readBlob(state, digest, range, redirect);
  }
  return {
    blobs: {
      size: (name, digest) => servedBlobSize(state, name, digest),
      read,
      delete: (name, digest) => unlinkBlob(state, name, digest),
    },
    uploads: {
      start: (name) => startSession(state, name),
      find: (name, uuid, signed) => findSession(state, name, uuid, signed),
      offset: (session) => sessionOffset(state, session),
      append: (session, body) => appendToSession(state, session, body),
      finish: (session, digest, body) => finishSession(state, session, digest, body),
      cancel: (session) => cancelSession(state, session),
      commit: (name, digest, chunks) => commitBlob(state, name, digest, chunks),
      ingest: (name, digest, chunks) => ingestBlob(state, name, digest, chunks),
      mount: (name, digest, from) => mountBlob(state, name, digest, from),
    },
    manifests: {
      get: (name, reference) => getManifest(state, name, reference),
      put: (name, reference, body, type) => putManifest(state, name, reference, body, type),
      delete: (name, reference, condition) => deleteManifest(state, name, reference, condition),
      adopt: (name, reference, body, type) => adoptManifest(state, name, reference, body, type),
    },
    tags: (name, page) => listTags(state, name, page),
    referrers: (name, subject, query) => listReferrers(state, name, subject, query),
    catalog: (page, visible) => listRepositories(state, page, visible),
    async catalogWithTags(page, visible) {
      const { items, next } = await listRepositories(state, page, visible);
      const repositories = await mapPool(
        items,
        TAGS_POOL,
        async (name) => ({ name, tags: await sortedTags(state, name) }),
      );
      return { items: repositories, next };
    },
    describe: {
      tags: (name, tags) => describeTags(state, name, tags),
      usage: (name) => describeUsage(state, name),
    },
    quotas: () => Promise.resolve([]),
    state,
  };
}
