// --s3-redirect: a blob GET of at least the threshold answers 307 to a presigned S3 URL that serves
// the bytes; smaller blobs, ranges and HEADs are answered directly; access is checked first.

import { RegistryError } from "../../src/errors.ts";
import type { Authorizer } from "../../src/auth/types.ts";
import {
  assert,
  assertEquals,
  digest,
  randomBytes,
  registryClient,
  S3_IGNORE,
  withServer,
} from "../helpers.ts";

const MIN = 64 * 1024;

Deno.test({
  name: "s3 redirect: big blobs go to the bucket, small ones, ranges and HEAD are served here",
  ignore: S3_IGNORE,
  async fn() {
    await using s = await withServer("s3", { s3Redirect: { minSize: MIN } });
    const big = randomBytes(MIN + 1, 31);
    const small = randomBytes(MIN - 1, 32);
    for (const blob of [big, small]) {
      assertEquals((await s.client.pushBlob("redir/app", blob)).status, 201);
    }
    const path = (blob: Uint8Array) => `/v2/redir/app/blobs/${digest(blob)}`;

    const sent = await fetch(`${s.url}${path(big)}`, { redirect: "manual" });
    await sent.body?.cancel();
    assertEquals(sent.status, 307);
    assertEquals(sent.headers.get("docker-content-digest"), digest(big));
    const location = new URL(sent.headers.get("location")!);
    assert(location.searchParams.has("X-Amz-Signature"), `presigned: ${location}`);
    assert(location.origin !== new URL(s.url).origin, "the bucket, not the registry");
    const followed = await s.client.get(path(big));
    assertEquals([followed.status, digest(followed.body)], [200, digest(big)]);

    const direct = await fetch(`${s.url}${path(small)}`, { redirect: "manual" });
    assertEquals(direct.status, 200);
    assertEquals(digest(new Uint8Array(await direct.arrayBuffer())), digest(small));
    const head = await fetch(`${s.url}${path(big)}`, { method: "HEAD", redirect: "manual" });
    assertEquals([head.status, head.headers.get("content-length")], [200, String(big.length)]);
    const range = await s.client.get(path(big), { range: "bytes=10-19" });
    assertEquals([range.status, range.body], [206, big.slice(10, 20)]);
    // Not linked here: 404, not a URL.
    const other = await fetch(`${s.url}/v2/redir/other/blobs/${digest(big)}`, {
      redirect: "manual",
    });
    await other.body?.cancel();
    assertEquals(other.status, 404);
  },
});

Deno.test({
  name: "s3 redirect: access is checked before a client is sent to the bucket",
  ignore: S3_IGNORE,
  async fn() {
    // Pulls of redir/secret are refused; everything else is allowed.
    const auth: Authorizer = {
      mode: "basic",
      authorize(req) {
        if (req.url.pathname.startsWith("/v2/redir/secret/blobs/")) {
          return Promise.reject(new RegistryError("DENIED", "no"));
        }
        return Promise.resolve({} as Awaited<ReturnType<Authorizer["authorize"]>>);
      },
    };
    await using s = await withServer("s3", { s3Redirect: { minSize: 1 } });
    const big = randomBytes(5000, 33);
    assertEquals((await s.client.pushBlob("redir/secret", big)).status, 201);
    await using guarded = await withServer("s3", {
      driver: s.driver,
      s3Redirect: { minSize: 1 },
      auth,
    });
    const res = await fetch(`${guarded.url}/v2/redir/secret/blobs/${digest(big)}`, {
      redirect: "manual",
    });
    await res.body?.cancel();
    assertEquals(res.status, 403);
    assertEquals(res.headers.get("location"), null);
    const open = await registryClient(s.url).get(`/v2/redir/secret/blobs/${digest(big)}`);
    assertEquals(digest(open.body), digest(big));
  },
});
