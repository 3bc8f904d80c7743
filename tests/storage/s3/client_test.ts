// The S3 client (src/storage/s3/client.ts) against a local stand-in server: which failures are
// retried, how S3's XML errors become S3Errors, big bodies by socket; and its XML parsing.

import {
  createS3Client,
  escapeXml,
  parseContents,
  S3Error,
  xmlBlocks,
  xmlValue,
} from "../../../src/storage/s3/client.ts";
import { assert, assertEquals, assertRejects, digest, randomBytes } from "../../helpers.ts";

/** A stand-in for S3 on 127.0.0.1 that answers with `handler` and records what it received. */
function fakeS3(handler: (request: Request, body: Uint8Array) => Response) {
  const seen: { method: string; path: string; headers: Headers; body: Uint8Array }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    const url = new URL(request.url);
    seen.push({
      method: request.method,
      path: url.pathname + url.search,
      headers: request.headers,
      body,
    });
    return handler(request, body);
  });
  const client = createS3Client({
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    bucket: "b",
    region: "us-east-1",
    pathStyle: true,
    accessKeyId: "key",
    secretAccessKey: "secret",
  });
  return { client, seen, [Symbol.asyncDispose]: () => server.shutdown() };
}

const xmlError = (code: string, message: string) =>
  `<?xml version="1.0"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;

Deno.test("s3 client: 5xx and 429 are retried, and the answer after them returned", async () => {
  let calls = 0;
  await using s3 = fakeS3(() => {
    calls++;
    if (calls === 1) return new Response(xmlError("SlowDown", "slow"), { status: 503 });
    if (calls === 2) return new Response("", { status: 429 });
    return new Response("ok");
  });
  const response = await s3.client.call({ method: "GET", key: "a/b" });
  assertEquals(await response.text(), "ok");
  assertEquals(calls, 3);
  assertEquals(s3.seen.map((r) => r.path), ["/b/a/b", "/b/a/b", "/b/a/b"]);
  assert(s3.seen.every((r) => r.headers.get("authorization")?.startsWith("AWS4-HMAC-SHA256")));
});

Deno.test("s3 client: a 4xx is not retried and becomes an S3Error with S3's code", async () => {
  await using s3 = fakeS3(() =>
    new Response(xmlError("AccessDenied", "no &amp; never"), { status: 403 })
  );
  const error = await assertRejects(
    () => s3.client.call({ method: "GET", key: "k" }),
    S3Error,
  ) as S3Error;
  assertEquals([error.status, error.code], [403, "AccessDenied"]);
  assertEquals(error.message, "s3 GET k: 403 AccessDenied: no & never");
  assertEquals(s3.seen.length, 1);
});

Deno.test("s3 client: statuses a call accepts are answers, not errors", async () => {
  await using s3 = fakeS3(() => new Response(null, { status: 404 }));
  assertEquals(await s3.client.head("missing"), undefined);
  assertEquals(s3.seen.length, 1);
});

Deno.test("s3 client: a 200 carrying an <Error> body fails a callXml", async () => {
  await using s3 = fakeS3(() => new Response(xmlError("InternalError", "copy failed")));
  const error = await assertRejects(
    () => s3.client.callXml({ method: "PUT", key: "to", headers: { "x-amz-copy-source": "/b/f" } }),
    S3Error,
  ) as S3Error;
  assertEquals(error.code, "InternalError");
});

Deno.test("s3 client: big bodies go by socket, small ones by fetch, both signed and intact", async () => {
  await using s3 = fakeS3(() => new Response(null, { status: 200, headers: { etag: '"e"' } }));
  const big = randomBytes(300 * 1024, 3);
  await s3.client.putObject("big", big);
  await s3.client.putObject("small", big.subarray(0, 100), true);
  assertEquals(s3.seen.map((r) => [r.method, r.path]), [["PUT", "/b/big"], ["PUT", "/b/small"]]);
  assertEquals(digest(s3.seen[0].body), digest(big));
  assertEquals(s3.seen[1].body, big.subarray(0, 100));
  assertEquals(s3.seen[1].headers.get("if-none-match"), "*");
  assert(s3.seen.every((r) => r.headers.get("authorization")?.startsWith("AWS4-HMAC-SHA256")));
});

Deno.test("s3 client: listings page on with the continuation token until not truncated", async () => {
  await using s3 = fakeS3((request) => {
    const token = new URL(request.url).searchParams.get("continuation-token");
    const key = token ? "p/2" : "p/1";
    return new Response(
      `<ListBucketResult><Contents><Key>${key}</Key><Size>1</Size></Contents>` +
        (token ? "<IsTruncated>false</IsTruncated>" : "<IsTruncated>true</IsTruncated>" +
          "<NextContinuationToken>t&amp;1</NextContinuationToken>") +
        "</ListBucketResult>",
    );
  });
  assertEquals(await s3.client.keysUnder("p/"), ["p/1", "p/2"]);
  assertEquals(new URL(`http://x${s3.seen[1].path}`).searchParams.get("continuation-token"), "t&1");
});

Deno.test("s3 xml: values are unescaped, blocks found, listings parsed", () => {
  const xml = "<R><Contents><Key>a&lt;b&gt;&amp;&quot;&apos;&#233;&#x41;</Key><Size>12</Size>" +
    "<LastModified>2026-01-02T03:04:05.000Z</LastModified></Contents>" +
    "<Contents><Key>c</Key><Size>0</Size></Contents></R>";
  assertEquals(xmlValue(xml, "Key"), `a<b>&"'éA`);
  assertEquals(xmlValue(xml, "Missing"), undefined);
  assertEquals(xmlBlocks(xml, "Contents").length, 2);
  const listed = parseContents(xml);
  assertEquals(listed.map((o) => [o.key, o.size]), [[`a<b>&"'éA`, 12], ["c", 0]]);
  assertEquals(listed[0].modified.toISOString(), "2026-01-02T03:04:05.000Z");
  const name = `x<&>"'y`;
  assertEquals(xmlValue(`<Key>${escapeXml(name)}</Key>`, "Key"), name);
});
