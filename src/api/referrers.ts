// Owns the referrers API over HTTP: manifests whose `subject` is a digest, as an image index.
// Implements distribution-spec v1.1 end-12a/12b (artifactType filter, OCI-Filters-Applied, Link).

import { requireDigest } from "../grammar.ts";
import {
  type Context,
  json,
  pageHeaders,
  pageParams,
  type Paging,
  repositoryName,
} from "../http.ts";
import { OCI_INDEX } from "../oci/manifest.ts";

const REFERRERS_PAGING: Paging = { size: 1000, max: 1000 };

export async function listReferrers(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const subject = requireDigest(ctx.params.digest ?? null);
  const page = pageParams(ctx.url, REFERRERS_PAGING);
  const artifactType = ctx.url.searchParams.get("artifactType") ?? undefined;
  const { items, next } = await ctx.store.referrers(name, subject, { ...page, artifactType });
  const headers = pageHeaders(ctx, page, next);
  headers.set("content-type", OCI_INDEX);
  if (artifactType !== undefined) headers.set("oci-filters-applied", "artifactType");
  // Never a 404: an unknown subject simply has no referrers.
  return json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: items }, { headers });
}
