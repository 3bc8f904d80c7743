// Health probes: /healthz always answers; /readyz follows the storage (a failing driver turns it 503
// with the reason, and back) without a storage call per poll, and turns 503 while shutting down.

import { createHealth } from "../../src/ops/health.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { assert, assertEquals, assertMatch, withServer } from "../helpers.ts";

/** Memory storage that fails every call while `failing.on`, counting every call. */
function failingDriver() {
  const inner = createMemoryDriver();
  const failing = { on: false, calls: 0 };
  const driver = new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        failing.calls++;
        if (failing.on) return Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:7480"));
        return value.apply(target, args);
      };
    },
  }) as StorageDriver;
  return { driver, failing };
}

/** Polls /readyz until its status is `status` (a 30 s guard, not a timing assertion). */
async function readyzUntil(url: string, status: number) {
  const deadline = Date.now() + 30_000;
  while (true) {
    const res = await fetch(`${url}/readyz`);
    const body = await res.json();
    if (res.status === status) return body;
    if (Date.now() > deadline) {
      throw new Error(`/readyz stayed ${res.status}: ${JSON.stringify(body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("health: /readyz turns 503 with the reason when storage fails, and 200 when it is back", async () => {
  const { driver, failing } = failingDriver();
  await using s = await withServer("memory", { driver, ops: { health: { interval: 50 } } });
  assertEquals(await readyzUntil(s.url, 200), { status: "ready" });
  failing.on = true;
  const down = await readyzUntil(s.url, 503);
  assertEquals(down.status, "unavailable");
  assertMatch(down.reason, /^storage failed: connect ECONNREFUSED/);
  const live = await fetch(`${s.url}/healthz`);
  assertEquals([live.status, await live.json()], [200, { status: "ok" }], "alive all the same");
  failing.on = false;
  assertEquals(await readyzUntil(s.url, 200), { status: "ready" });
});

Deno.test("health: a failing request makes the next poll see it (no wait for the interval)", async () => {
  const { driver, failing } = failingDriver();
  await using s = await withServer("memory", { driver, ops: { health: { interval: 3_600_000 } } });
  failing.on = true;
  const res = await s.client.get("/v2/app/manifests/latest");
  assertEquals(res.status, 503, "the request itself fails");
  await readyzUntil(s.url, 503);
  failing.on = false;
});

Deno.test("health: polling /readyz and /healthz costs no storage call while the verdict is fresh", async () => {
  const { driver, failing } = failingDriver();
  await using s = await withServer("memory", { driver, ops: { health: { interval: 3_600_000 } } });
  const before = failing.calls;
  for (let i = 0; i < 200; i++) {
    for (const path of ["/readyz", "/healthz"]) {
      const res = await fetch(`${s.url}${path}`, { method: i % 2 ? "HEAD" : "GET" });
      await res.body?.cancel();
      assertEquals(res.status, 200);
    }
  }
  assertEquals(failing.calls, before, "400 polls, no storage call");
});

Deno.test("health: at most one probe per interval however often polled; a stalled store times out", async () => {
  let calls = 0;
  let stall = false;
  const inner = createMemoryDriver();
  const driver: StorageDriver = {
    ...inner,
    kind: inner.kind,
    stat(key) {
      calls++;
      return stall ? new Promise(() => {}) : inner.stat(key);
    },
  };
  const health = createHealth(driver, { interval: 0, timeout: 30 });
  assertEquals(health.readiness(), { ready: true });
  await health.stop();
  const afterFirst = calls;
  assertEquals(afterFirst, 1, "a stale verdict starts one probe");
  const next = createHealth(driver, { interval: 0, timeout: 30 });
  stall = true;
  for (let i = 0; i < 50; i++) next.readiness();
  assertEquals(calls, afterFirst + 1, "one probe in flight at a time");
  await next.stop();
  const verdict = next.readiness();
  assert(!verdict.ready, "a store that never answers is not ready");
  assertMatch(verdict.reason, /did not answer within 30 ms/);
});

Deno.test("health: shutting down is not ready", () => {
  const health = createHealth(createMemoryDriver(), { interval: 3_600_000 });
  health.stopping();
  assertEquals(health.readiness(), { ready: false, reason: "shutting down" });
});

Deno.test("health: the --metrics-addr listener serves the probes and metrics, nothing else", async () => {
  await using s = await withServer("memory", {
    ops: { metricsAddr: { hostname: "127.0.0.1", port: 0 } },
  });
  const base = s.server.metricsUrl!;
  assert(base !== s.url, "its own port");
  const get = async (path: string, method = "GET") => {
    const res = await fetch(`${base}${path}`, { method });
    return { status: res.status, text: await res.text(), type: res.headers.get("content-type") };
  };
  const metrics = await get("/metrics");
  assertEquals(metrics.status, 200);
  assertMatch(metrics.type, /^text\/plain; version=0\.0\.4/);
  assertMatch(metrics.text, /^process_resident_memory_bytes \d+/m);
  assertMatch(metrics.text, /^nodejs_eventloop_lag_seconds /m);
  assertMatch(metrics.text, /^process_open_fds \d+/m);
  assertEquals((await get("/readyz")).text, '{"status":"ready"}');
  assertEquals((await get("/healthz")).status, 200);
  assertEquals((await get("/v2/")).status, 404);
  assertEquals((await get("/metrics", "POST")).status, 405);
  assertEquals((await get("/metrics", "HEAD")).text, "");
});
