// Property-based fuzzing (fast-check) of two live registries (subprocesses, fs storage: one open,
// one running the token server) with malformed requests over raw sockets: names, digests,
// ranges, JSON, framing, headers, upload sessions, the token endpoint (fuzz_arbitraries.ts).
// Every request must get an answer below 500, or a closed connection, within its deadline; the
// processes must live; afterwards the image pushed first is byte-identical and the catalog the
// same. Every distinct failure is listed (request, response, the server's logged error) before
// the test fails. FUZZ_RUNS (default 10000), FUZZ_SEED (default 1), FUZZ_DEADLINE_MS (10000).

import fc from "fast-check";
import {
  assert,
  assertEquals,
  digest,
  pushImage,
  registryClient,
  type RegistryProcess,
  spawnRegistry,
  tempDir,
} from "../helpers.ts";
import { pullImage } from "../maintenance/gc_helpers.ts";
import { htpasswdLine } from "../auth/fixtures.ts";
import { describeRequest, exchange, type Outcome } from "./fuzz_http.ts";
import {
  acceptableManifestForTests,
  CATEGORIES,
  type Category,
  type FuzzContext,
  type FuzzRequest,
  fuzzRequests,
  normalizedPath,
} from "./fuzz_arbitraries.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "10000");
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? "1");
const DEADLINE_MS = Number(Deno.env.get("FUZZ_DEADLINE_MS") ?? "10000");

/** A request that got a 5xx, or nothing before its deadline. */
interface Failed {
  req: FuzzRequest;
  outcome: Outcome;
  requestId?: string;
}

/** Keeps the first failures of a run for the report (a broken build could fail them all). */
const KEEP_FAILED = 2000;

/** The error code and message of a registry error body, or the body's start. */
function bodySignature(o: Outcome): string {
  try {
    const e = JSON.parse(o.body ?? "").errors?.[0];
    if (e) return `${e.code}: ${String(e.message).slice(0, 60)}`;
  } catch {
    // a plain-text body
  }
  return JSON.stringify((o.body ?? "").slice(0, 60));
}

/**
 * Distinct failures: by category, status and the cause the server logged for that request (its
 * error name and message), else the response body. Each with a count, its sub-cases and one
 * example request and response.
 */
function groupFailures(failed: Failed[], logLines: string[]): string[] {
  const logged = new Map<string, string>();
  for (const line of logLines) {
    if (!line.includes('"request failed"')) continue;
    const record = JSON.parse(line);
    const e = record.error ?? {};
    logged.set(record["http.request.id"], `${e.name}: ${String(e.message).slice(0, 100)}`);
  }
  const groups = new Map<string, { n: number; labels: Map<string, number>; first: Failed }>();
  for (const f of failed) {
    const cause = f.outcome.kind === "timeout"
      ? `no answer within ${DEADLINE_MS} ms`
      : `${f.outcome.status} ${
        (f.requestId && logged.get(f.requestId)) ?? bodySignature(f.outcome)
      }`;
    const key = `${f.req.category} | ${cause}`;
    const g = groups.get(key) ?? { n: 0, labels: new Map(), first: f };
    g.n++;
    // Sub-cases with their numbers blurred (`k=290` and `k=3` are one case), counted.
    const label = f.req.label?.replace(/\d+/g, "N");
    if (label) g.labels.set(label, (g.labels.get(label) ?? 0) + 1);
    groups.set(key, g);
  }
  return [...groups].map(([key, g]) => {
    const labels = [...g.labels].sort((a, b) => b[1] - a[1]).slice(0, 12)
      .map(([label, n]) => `${label} ×${n}`);
    const { req, outcome } = g.first;
    return [
      `--- ${key} (×${g.n})`,
      ...(labels.length ? [`sub-cases: ${labels.join(" | ")}`] : []),
      `example request (${req.target}${req.halfClose ? ", then half-closed" : ""}):`,
      describeRequest(req.bytes),
      `response: ${outcome.head?.split("\r\n")[0] ?? outcome.kind} ${
        (outcome.body ?? "").slice(0, 200)
      }`,
    ].join("\n");
  });
}

Deno.test(`fuzz: ${RUNS} malformed requests over raw sockets, no 5xx, no hang (seed ${SEED})`, async () => {
  await using dir = await tempDir("registry-fuzz-");
  const htpasswd = `${dir.path}/htpasswd`;
  await Deno.writeTextFile(htpasswd, `${htpasswdLine("fuzz", "fuzz-password")}\n`);
  await using open = await spawnRegistry(["--data-dir", `${dir.path}/open`]);
  await using token = await spawnRegistry([
    "--data-dir",
    `${dir.path}/token`,
    "--auth",
    "token",
    "--htpasswd",
    htpasswd,
  ]);
  const exited = new Map<RegistryProcess, boolean>();
  for (const p of [open, token]) p.process.status.then(() => exited.set(p, true));

  const client = registryClient(open.url);
  const image = await pushImage(client, "keep/app", "v1", { layerCount: 2, layerSize: 3000 });
  const sessions: string[] = [];
  for (let i = 0; i < 8; i++) {
    const location = new URL(await client.startUpload("fuzz/sessions"));
    sessions.push(`${location.pathname}${location.search}`);
  }
  const catalogBefore = (await client.get("/v2/_catalog")).text;
  const tagsBefore = (await client.get("/v2/keep/app/tags/list")).text;
  assertEquals(JSON.parse(catalogBefore), { repositories: ["keep/app"] });
  const ctx: FuzzContext = {
    keep: {
      name: "keep/app",
      tag: "v1",
      manifest: image.digest,
      blobs: [image.config, ...image.layers].map((b) => digest(b)),
    },
    sessions,
  };

  const ports = { open: Number(new URL(open.url).port), token: Number(new URL(token.url).port) };
  const statuses = new Map<string, number>();
  const perCategory = new Map<Category, { n: number; fivexx: number; closed: number }>(
    CATEGORIES.map((c) => [c, { n: 0, fivexx: 0, closed: 0 }]),
  );
  const failed: Failed[] = [];
  let died: string | undefined;
  let failures = 0;
  let total = 0;
  let fivexx = 0;
  const started = performance.now();

  await fc.assert(
    fc.asyncProperty(fuzzRequests(ctx), async (req) => {
      const outcome = await exchange(ports[req.target], req, DEADLINE_MS);
      total++;
      const cat = perCategory.get(req.category)!;
      cat.n++;
      const label = outcome.kind === "response" ? String(outcome.status) : outcome.kind;
      statuses.set(label, (statuses.get(label) ?? 0) + 1);
      if (outcome.kind === "closed") cat.closed++;
      const bad = outcome.kind === "timeout" ||
        (outcome.kind === "response" && !(outcome.status! < 500));
      if (outcome.kind === "response" && outcome.status! >= 500) {
        fivexx++;
        cat.fivexx++;
      }
      if (bad) {
        failures++;
        const requestId = /^x-request-id:\s*(\S+)/im.exec(outcome.head ?? "")?.[1];
        if (failed.length < KEEP_FAILED) failed.push({ req, outcome, requestId });
      }
      // A dead server ends the run (no point sending the rest): reported below.
      return !exited.get(open) && !exited.get(token);
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  ).catch((error) => {
    died = String(error).slice(0, 3000);
  });
  const seconds = (performance.now() - started) / 1000;

  // The image pushed before is byte-identical; the catalog and its tags are unchanged.
  await pullImage(client, "keep/app", "v1", image);
  const catalogAfter = (await client.get("/v2/_catalog")).text;
  const tagsAfter = (await client.get("/v2/keep/app/tags/list")).text;

  await open.stop();
  await token.stop();
  const stderr = { open: await open.stderr, token: await token.stderr };
  const summary = [
    `fuzz: ${total} requests in ${seconds.toFixed(1)} s (seed ${SEED}), ` +
    `${fivexx} answered 5xx (${(fivexx / Math.max(1, total) * 10_000).toFixed(1)} per 10,000), ` +
    `${statuses.get("timeout") ?? 0} without an answer in ${DEADLINE_MS} ms, ` +
    `${statuses.get("closed") ?? 0} closed without a response`,
    `statuses: ${[...statuses].sort().map(([s, n]) => `${s}×${n}`).join(" ")}`,
    `per category: ${
      [...perCategory].map(([c, v]) => `${c} ${v.n} (5xx ${v.fivexx}, closed ${v.closed})`).join(
        "; ",
      )
    }`,
  ];
  console.log(summary.join("\n"));
  const report = groupFailures(failed, [...open.lines, ...token.lines]);
  const traces = (stderr.open + stderr.token).split("\n").filter((l) => /error/i.test(l));
  if (traces.length) {
    report.push(
      `--- stderr: ${traces.length} error line(s), first:\n${traces.slice(0, 5).join("\n")}`,
    );
  }

  assert(died === undefined, `a registry process exited during the run:\n${died}`);
  assertEquals(JSON.parse(catalogAfter), JSON.parse(catalogBefore), "the catalog after fuzzing");
  assertEquals(JSON.parse(tagsAfter), JSON.parse(tagsBefore), "keep/app's tags after fuzzing");
  assert(total >= RUNS, `only ${total} of ${RUNS} requests were sent`);
  assert(!/panicked/.test(stderr.open + stderr.token), "a registry panicked (see stderr)");
  assert(
    failures === 0,
    `${failures} failed request(s) (${fivexx} 5xx) of ${total}, ${report.length} distinct:\n` +
      report.join("\n"),
  );
});

Deno.test("fuzz: the generators never aim a write at keep/app and never make an acceptable manifest", () => {
  // The guards the fuzz test's assertions rely on, checked on their own.
  assertEquals(
    normalizedPath("/v2/fuzz/%2e%2e/keep/app/manifests/v1"),
    "/v2/keep/app/manifests/v1",
  );
  assert(
    acceptableManifestForTests(new TextEncoder().encode('{"schemaVersion":2,"manifests":[]}')),
  );
  assert(
    !acceptableManifestForTests(new TextEncoder().encode('{"schemaVersion":2,"manifests":[{}]}')),
  );
  const ctx: FuzzContext = {
    keep: {
      name: "keep/app",
      tag: "v1",
      manifest: `sha256:${"1".repeat(64)}`,
      blobs: [`sha256:${"2".repeat(64)}`],
    },
    sessions: ["/v2/fuzz/sessions/blobs/uploads/00000000-0000-0000-0000-000000000000?_state=a.b"],
  };
  for (const req of fc.sample(fuzzRequests(ctx), { numRuns: 1000, seed: 7 })) {
    const line = new TextDecoder("latin1").decode(req.bytes.subarray(0, 4096)).split(/\r?\n/)[0];
    const [method, target] = line.split(" ");
    if (["PUT", "POST", "PATCH", "DELETE"].includes(method) && target) {
      assert(!normalizedPath(target).startsWith("/v2/keep/app/"), `a write to keep/app: ${line}`);
    }
  }
});
