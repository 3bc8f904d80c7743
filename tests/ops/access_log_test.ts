// The access log and the audit log: who (user or anonymous), from where, with what client, on which
// route, the real size of a chunked body, no body size for HEAD; writes and deletes with their user.

import { createAuth } from "../../src/auth/auth.ts";
import { setupLogging } from "../../src/log.ts";
import { startServer } from "../../src/server.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  buildImage,
  digest,
  OCI_MANIFEST,
  randomBytes,
  registryClient,
  streamOf,
  tempDir,
} from "../helpers.ts";
import { basic, htpasswdLine } from "../auth/fixtures.ts";

type Line = Record<string, unknown>;

/** Log lines captured in memory (logtape writes them to this stream). */
async function captureLogs(): Promise<Line[]> {
  const lines: Line[] = [];
  let pending = "";
  await setupLogging({
    verbose: false,
    stream: new WritableStream({
      write(chunk) {
        pending += new TextDecoder().decode(chunk);
        let newline;
        while ((newline = pending.indexOf("\n")) >= 0) {
          lines.push(JSON.parse(pending.slice(0, newline)));
          pending = pending.slice(newline + 1);
        }
      },
    }),
  });
  return lines;
}

/** The access line of a request, found by its X-Request-Id (waits for the sink's write). */
async function accessLine(lines: Line[], response: Response): Promise<Line> {
  const id = response.headers.get("x-request-id");
  for (let i = 0; i < 100; i++) {
    const line = lines.find((l) => l.message === "request" && l["http.request.id"] === id);
    if (line) return line;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no access log line for request ${id}`);
}

Deno.test("access and audit logs: user, client, user agent, route, real body sizes, traces", async () => {
  const lines = await captureLogs();
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/htpasswd`, htpasswdLine("alice", "secret") + "\n");
  const auth = await createAuth({ auth: "basic", htpasswd: `${dir.path}/htpasswd` });
  const auditPath = `${dir.path}/audit.log`;
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    deleteEnabled: true,
    driver: createMemoryDriver(),
    auth,
    trustedProxies: ["127.0.0.1"],
    ops: { auditLog: auditPath, traceparent: true },
  });
  const alice = { ...basic("alice", "secret"), "user-agent": "containers/5.0 (test)" };
  const client = registryClient(server.url, alice);
  const image = buildImage([randomBytes(300, 4)], 4);
  try {
    // A chunked PATCH (no Content-Length) of 3 MiB: its bytes are counted as they are read.
    const location = await client.startUpload("team/app");
    const chunk = randomBytes(1024 * 1024, 3);
    const patch = await fetch(location, {
      method: "PATCH",
      headers: alice,
      body: streamOf(chunk, chunk, chunk),
    });
    await patch.body?.cancel();
    assertEquals(patch.status, 202);
    const patched = await accessLine(lines, patch);
    assertEquals(patched["http.request.body.size"], 3 * 1024 * 1024, "chunked body counted");
    assertEquals(patched["user.name"], "alice");
    assertEquals(patched["client.address"], "127.0.0.1");
    assertEquals(patched["user_agent.original"], "containers/5.0 (test)");
    assertEquals(patched["http.route"], "end-5/6/13/14");
    assertMatch(String(patched["trace.id"]), /^[0-9a-f]{32}$/);

    // HEAD 404: no body is sent, so none is logged.
    const head = await fetch(`${server.url}/v2/team/app/blobs/sha256:${"0".repeat(64)}`, {
      method: "HEAD",
      headers: alice,
    });
    assertEquals(head.status, 404);
    const headLine = await accessLine(lines, head);
    assert(!("http.response.body.size" in headLine), "HEAD logs no response body size");
    assertEquals(headLine["error.code"], "BLOB_UNKNOWN");

    // Anonymous, a bad password, and a traceparent continued.
    const anonymous = await fetch(`${server.url}/v2/`, {
      headers: { traceparent: `00-${"4bf92f3577b34da6a3ce929d0e0e4736"}-00f067aa0ba902b7-01` },
    });
    await anonymous.body?.cancel();
    const anonymousLine = await accessLine(lines, anonymous);
    assertEquals(anonymousLine["user.name"], "anonymous");
    assertEquals(anonymousLine["http.response.status"], 401);
    assertEquals(anonymousLine["trace.id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert(anonymousLine["span.id"] !== "00f067aa0ba902b7", "a span of its own");
    const wrong = await fetch(`${server.url}/v2/`, { headers: basic("alice", "nope") });
    await wrong.body?.cancel();
    assertEquals(wrong.status, 401);

    // Behind a trusted proxy, the client is the address it forwarded.
    const proxied = await fetch(`${server.url}/v2/`, {
      headers: { ...alice, "x-forwarded-for": "203.0.113.9, 127.0.0.1" },
    });
    await proxied.body?.cancel();
    assertEquals((await accessLine(lines, proxied))["client.address"], "203.0.113.9");

    // Writes and deletes for the audit log; reads and accepted PATCHes stay out of it.
    for (const blob of [image.config, ...image.layers]) {
      assertEquals((await client.pushBlob("team/app", blob)).status, 201);
    }
    assertEquals(
      (await client.pushManifest("team/app", "v1", image.manifest, OCI_MANIFEST)).status,
      201,
    );
    assertEquals((await client.get("/v2/team/app/manifests/v1")).status, 200);
    const refused = await fetch(`${server.url}/v2/team/app/manifests/v1`, { method: "DELETE" });
    await refused.body?.cancel();
    assertEquals(refused.status, 401);
    assertEquals((await client.request("DELETE", "/v2/team/app/manifests/v1")).status, 202);

    assertEquals((await registryClient(server.url).get("/metrics")).status, 401, "needs catalog");
    const metrics = (await client.get("/metrics")).text;
    assertMatch(metrics, /registry_auth_failures_total\{reason="bad_credentials"\} 1$/m);
    assertMatch(metrics, /registry_uploads_in_progress 1$/m, "the PATCHed session is in progress");
  } finally {
    await server.shutdown(2000);
  }
  const audit = (await Deno.readTextFile(auditPath)).trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(
    audit.map((a) =>
      `${a["user.name"]} ${a["event.action"]} ${a["http.request.method"]} ${a.repository} ${
        a.reference ?? ""
      } ${a["http.response.status"]}`
    ),
    [
      "alice push POST team/app  202",
      `alice push POST team/app ${digest(image.config)} 201`,
      `alice push POST team/app ${digest(image.layers[0])} 201`,
      "alice push PUT team/app v1 201",
      "anonymous delete DELETE team/app v1 401",
      "alice delete DELETE team/app v1 202",
    ],
  );
  assertEquals(audit[3].digest, image.digest, "the manifest's digest");
  assertEquals(audit[3]["client.address"], "127.0.0.1");
  assertMatch(audit[3]["@timestamp"], /^\d{4}-\d\d-\d\dT/);
});
