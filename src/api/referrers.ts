// Owns the referrers API: manifests whose `subject` is a digest, as an image index.
// Implements distribution-spec v1.1 end-12a/12b (artifactType filter, OCI-Filters-Applied, Link).

import { requireDigest } from "../grammar.ts";
import { type Context, json, nextLink, pageParams, paginate, repositoryName } from "../http.ts";
import { readJson } from "../registry.ts";
import { referrersPath } from "../storage/paths.ts";
import { type Descriptor, OCI_INDEX } from "./manifests.ts";

const MAX_PAGE = 1000;

export async function listReferrers(ctx: Context): Promise<Response> {
  const name = repositoryName(ctx);
  const subject = requireDigest(ctx.params.digest ?? null);
  const page = pageParams(ctx.url, MAX_PAGE);
  const artifactType = ctx.url.searchParams.get("artifactType");
  const folder = referrersPath(name, subject);
  const entries = (await ctx.registry.driver.list(folder)).sort();
  const all = (await Promise.all(
    entries.map((entry) => readJson<Descriptor>(ctx.registry, `${folder}/${entry}`)),
  ))
    .filter((d): d is Descriptor => d !== undefined)
    .filter((d) => artifactType === null || d.artifactType === artifactType);
  const { items, next } = paginate(all, (d) => d.digest.replace(":", "-"), page, MAX_PAGE);
  const headers = new Headers({ "content-type": OCI_INDEX });
  if (artifactType !== null) headers.set("oci-filters-applied", "artifactType");
  if (next !== undefined) headers.set("link", nextLink(ctx, next, page.n ?? MAX_PAGE));
  // Never a 404: an unknown subject simply has no referrers.
  return json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: items }, { headers });
}
