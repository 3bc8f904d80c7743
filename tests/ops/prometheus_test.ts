// Metrics through a real Prometheus (Debian `prometheus`): it scrapes the registry's --metrics-addr
// listener; its HTTP API answers the request counts of a known sequence, and series stay bounded.

import { buildImage, digest, randomBytes, withServer } from "../helpers.ts";
import { assert, assertEquals, envVar, sendSignal } from "../helpers.ts";
import { createMetrics } from "../../src/ops/metrics.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const installed = (() => {
  try {
    return Deno.statSync(PROMETHEUS).isFile;
  } catch {
    return false;
  }
})();
const IN_CI = envVar("CI") === "true";
if (!installed && !IN_CI) {
  console.warn("prometheus tests skipped: apt-get install prometheus (Debian package prometheus)");
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Prometheus on 127.0.0.1 scraping `target` every second, with its own data dir. */
async function startPrometheus(target: string) {
  const dir = await Deno.makeTempDir({ prefix: "prometheus-test-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "scrape_configs:",
      "  - job_name: registry",
      "    static_configs:",
      `      - targets: ["${target}"]`,
    ].join("\n"),
  );
  const process = new Deno.Command(PROMETHEUS, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(process.stderr).text();
  const api = `http://127.0.0.1:${port}/api/v1`;
  const query = async (promql: string): Promise<Sample[]> => {
    const res = await fetch(`${api}/query?query=${encodeURIComponent(promql)}`);
    const body = await res.json();
    if (body.status !== "success") throw new Error(`query ${promql}: ${JSON.stringify(body)}`);
    return body.data.result;
  };
  /** Polls until `check` holds (a guard of 60 s, not a timing assertion). */
  const until = async <T>(what: string, read: () => Promise<T>, check: (value: T) => boolean) => {
    const deadline = Date.now() + 60_000;
    let last: T | undefined;
    while (Date.now() < deadline) {
      try {
        last = await read();
        if (check(last)) return last;
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`prometheus: ${what} not reached; last ${JSON.stringify(last)}`);
  };
  return {
    query,
    until,
    async [Symbol.asyncDispose]() {
      sendSignal(process, "SIGTERM");
      await process.status;
      await stderr;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const value = (samples: Sample[]) => samples.length === 1 ? Number(samples[0].value[1]) : NaN;

Deno.test({
  name:
    "metrics: Prometheus scrapes the request counts of known pushes and pulls; series stay bounded",
  ignore: !installed && !IN_CI,
  async fn() {
    await using s = await withServer("memory", {
      ops: { metricsAddr: { hostname: "127.0.0.1", port: 0 } },
    });
    const metricsUrl = s.server.metricsUrl!;
    assertEquals((await s.client.get("/metrics")).status, 404, "not on the main port");
    await using prometheus = await startPrometheus(new URL(metricsUrl).host);
    await prometheus.until(
      "the target up",
      () => prometheus.query('up{job="registry"}'),
      (r) => value(r) === 1,
    );

    // The known sequence: 3 blob pushes, a manifest push, 5 manifest pulls, 2 blob pulls.
    const image = buildImage([randomBytes(4000, 1), randomBytes(3000, 2)], 1);
    for (const blob of [image.config, ...image.layers]) {
      assertEquals((await s.client.pushBlob("team/app", blob)).status, 201);
    }
    assertEquals((await s.client.pushManifest("team/app", "v1", image.manifest)).status, 201);
    for (let i = 0; i < 5; i++) {
      assertEquals((await s.client.get("/v2/team/app/manifests/v1")).status, 200);
    }
    for (const layer of image.layers) {
      assertEquals((await s.client.get(`/v2/team/app/blobs/${digest(layer)}`)).status, 200);
    }

    const count = (route: string, method: string, status: number) =>
      `registry_http_requests_total{job="registry",route="${route}",method="${method}",status="${status}"}`;
    await prometheus.until(
      "5 manifest pulls",
      () => prometheus.query(count("end-3/7/9", "GET", 200)),
      (r) => value(r) === 5,
    );
    assertEquals(value(await prometheus.query(count("end-4a/4b/11", "POST", 201))), 3);
    assertEquals(value(await prometheus.query(count("end-3/7/9", "PUT", 201))), 1);
    assertEquals(value(await prometheus.query(count("end-2/10", "GET", 200))), 2);
    const received = await prometheus.query(
      'registry_http_request_body_bytes_total{route="end-4a/4b/11",method="POST"}',
    );
    assertEquals(value(received), image.config.length + 4000 + 3000, "blob bytes received");
    const latency = await prometheus.query(
      'registry_http_request_duration_seconds_count{route="end-3/7/9",method="GET",status="200"}',
    );
    assertEquals(value(latency), 5, "a latency histogram per route");
    assert(
      value(await prometheus.query('registry_storage_operations_total{driver="memory",op="put"}')) >
        0,
      "storage operations by driver and op",
    );

    // 1,000 requests to 1,000 repositories: the first ten bring the series of their route,
    // method and status (and the storage calls they make); the next 990 bring none.
    const series = 'count({__name__=~"registry_.+", job="registry"})';
    const misses = count("end-3/7/9", "GET", 404);
    const miss = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        assertEquals((await s.client.get(`/v2/repo-${i}/manifests/latest`)).status, 404);
      }
      await prometheus.until(
        `${to} misses`,
        () => prometheus.query(misses),
        (r) => value(r) === to,
      );
    };
    await miss(0, 10);
    const before = value(await prometheus.query(series));
    await miss(10, 1000);
    const after = value(await prometheus.query(series));
    assertEquals(after, before, "no series per repository");
    const named = await prometheus.query('{__name__=~"registry_.+", job="registry"}');
    const leaked = named.filter((sample) => JSON.stringify(sample.metric).includes("repo-"));
    assertEquals(leaked, [], "no label holds a repository name");
  },
});

Deno.test({
  name: "metrics: the README's sample rules pass promtool and name metrics the registry exports",
  ignore: !installed && !IN_CI,
  async fn() {
    const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
    const section = readme.slice(readme.indexOf("A sample rule file"));
    const rules = /```yaml\n([\s\S]*?)```/.exec(section)![1];
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/rules.yml`, rules);
      const check = await new Deno.Command("/usr/bin/promtool", {
        args: ["check", "rules", `${dir}/rules.yml`],
      }).output();
      assertEquals(
        check.code,
        0,
        new TextDecoder().decode(check.stdout) + new TextDecoder().decode(check.stderr),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const exported = (await createMetrics({ processMetrics: false }).render()).body;
    const names = new Set(
      [...rules.matchAll(/registry_\w+/g)].map((m) => m[0].replace(/_bucket$/, "")),
    );
    assert(names.size >= 5, `rules name ${[...names]}`);
    for (const name of names) assert(exported.includes(`# TYPE ${name} `), `${name} is exported`);
  },
});
