// The web UI's bench (issue 14): pages of a registry with 10,000 repositories and a repository of
// 5,000 tags, over HTTP and rendered in headless Chromium, cold (a fresh process) and warm; and
// how the API answers while the storage page's whole-store walk runs.
//
//   deno task bench --only ui [--quick] [--runs N]       (bench/main.ts calls benchUi)
//   deno run -A bench/ui.ts [--quick]                     (this section alone)

import { createFsDriver } from "../src/storage/fs.ts";
import { startServer } from "../src/server.ts";
import { createStore } from "../src/store/store.ts";
import { parseDigest } from "../src/grammar.ts";
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from "../src/oci/manifest.ts";
import { digestOf } from "../src/digest.ts";
import type { PutSource, StorageDriver } from "../src/storage/driver.ts";

export interface UiFigure {
  id: string;
  label: string;
  unit: string;
  median: number;
  runs: number[];
}

const encoder = new TextEncoder();

/** Fills a driver through the store: `repositories` small repositories and one of `tags` tags. */
export async function fill(
  driver: StorageDriver,
  repositories: number,
  tags: number,
): Promise<void> {
  const store = createStore({ driver });
  // The empty store's first listing marks the catalog index complete, so the server's first
  // listing reads the index instead of walking every repository.
  await store.catalog({ n: 1 });
  const layer = encoder.encode("layer bytes shared by every image ".repeat(64));
  const config = encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: "2026-11-01T10:00:00Z",
    config: { Cmd: ["/app"] },
    rootfs: { type: "layers", diff_ids: [] },
    history: [{ created_by: "COPY app /" }],
  }));
  const layerDigest = parseDigest(digestOf(layer, "sha256"))!;
  const configDigest = parseDigest(digestOf(config, "sha256"))!;
  const link = async (name: string) => {
    await store.uploads.commit(name, layerDigest, ReadableStream.from([layer]));
    await store.uploads.commit(name, configDigest, ReadableStream.from([config]));
  };
  const manifest = (note: string) =>
    encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest.value, size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: layerDigest.value, size: layer.length }],
      annotations: { note },
    }));
  const names = Array.from(
    { length: repositories },
    (_, i) => `team-${String(i % 100).padStart(2, "0")}/service-${String(i).padStart(5, "0")}`,
  );
  for (let i = 0; i < names.length; i += 64) {
    await Promise.all(
      names.slice(i, i + 64).map(async (name, j) => {
        await link(name);
        const body = manifest(name);
        for (let t = 0; t < 1 + ((i + j) % 3); t++) {
          await store.manifests.put(name, { tag: `v${t}` }, body, OCI_MANIFEST);
        }
      }),
    );
  }
  await link("zeta/big-tags");
  for (let i = 0; i < tags; i += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, tags - i) }, (_, j) =>
        store.manifests.put(
          "zeta/big-tags",
          { tag: `build-${String(i + j).padStart(5, "0")}` },
          manifest(`build ${i + j}`),
          OCI_MANIFEST,
        )),
    );
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timedGet(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url);
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return performance.now() - started;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Page loads in Chromium until the table's rows are drawn; undefined without Chromium. */
async function browserRender(urls: { id: string; url: string; rows: string }[]) {
  try {
    Deno.statSync("/usr/bin/chromium");
  } catch {
    return undefined;
  }
  const { default: puppeteer } = await import("puppeteer-core");
  const profile = await Deno.makeTempDir({ prefix: "ui-bench-chromium-" });
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      `--user-data-dir=${profile}`,
    ],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const times: Record<string, number> = {};
    for (const { id, url, rows } of urls) {
      const started = performance.now();
      await page.goto(url);
      await page.waitForFunction(
        (selector: string) => document.querySelectorAll(selector).length > 0,
        { timeout: 30_000 },
        rows,
      );
      times[id] = performance.now() - started;
    }
    return times;
  } finally {
    await browser.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

// Functions passed to page.waitForFunction run in the page.
// deno-lint-ignore no-explicit-any
declare const document: any;

export async function benchUi(
  options: { runs: number; quick: boolean; log?: (line: string) => void },
): Promise<UiFigure[]> {
  const log = options.log ?? console.log;
  const repositories = 10_000;
  const tags = 5_000;
  const dir = await Deno.makeTempDir({ prefix: "sr-bench-ui-" });
  const driver = createFsDriver(dir);
  const t0 = performance.now();
  // Filled without flushes (a fixture, not a figure): the same files, written in seconds.
  const unflushed = {
    ...driver,
    put: (key: string, data: PutSource) => driver.put(key, data, { durable: false }),
  };
  await fill(unflushed, repositories, tags);
  log(
    `ui: filled ${repositories} repositories and ${tags} tags in ${
      Math.round(performance.now() - t0)
    } ms (fs storage)`,
  );
  const samples: Record<string, { label: string; unit: string; runs: number[] }> = {};
  const add = (id: string, label: string, value: number, unit = "ms") => {
    (samples[id] ??= { label, unit, runs: [] }).runs.push(value);
  };
  const runs = options.quick ? Math.min(options.runs, 2) : options.runs;
  for (let run = 0; run < runs; run++) {
    // A fresh process's state each run: the first requests are cold (no catalog, no figures).
    const server = await startServer({ port: 0, host: "127.0.0.1", deleteEnabled: true, driver });
    try {
      const u = server.url;
      add(
        "tags_cold",
        "tags page 1 of 5,000 by name, cold",
        await timedGet(`${u}/ui/api/r/zeta/big-tags/tags`),
      );
      add(
        "tags_pushed",
        "tags page 1 of 5,000 by last push, warm",
        await timedGet(`${u}/ui/api/r/zeta/big-tags/tags?sort=pushed`),
      );
      add(
        "tags_page",
        "tags page 60 of 100 by name, warm",
        await timedGet(`${u}/ui/api/r/zeta/big-tags/tags?cursor=3000`),
      );
      add(
        "repos_cold",
        "repositories page 1 of 10,000 (50 rows), cold",
        await timedGet(`${u}/ui/api/repositories`),
      );
      add("repos_warm", "repositories page 1, warm", await timedGet(`${u}/ui/api/repositories`));
      add(
        "repos_filter",
        "repositories filtered (q=service-09), cold rows",
        await timedGet(`${u}/ui/api/repositories?q=service-09`),
      );
      add(
        "repos_deep",
        "repositories page after team-99/service-09899",
        await timedGet(`${u}/ui/api/repositories?last=team-99/service-09899`),
      );
      // The API's latency alone, then while the storage page walks the whole store.
      const idle: number[] = [];
      for (let i = 0; i < 200; i++) {
        idle.push(await timedGet(`${u}/v2/zeta/big-tags/manifests/build-00001`));
      }
      const busy: number[] = [];
      const started = performance.now();
      let walking = true;
      const walk = timedGet(`${u}/ui/api/storage?fresh=1`).finally(() => walking = false);
      while (walking) busy.push(await timedGet(`${u}/v2/zeta/big-tags/manifests/build-00001`));
      await walk;
      add(
        "storage_walk",
        "storage page: walk + GC dry run of 10,000 repositories",
        performance.now() - started,
      );
      add("api_idle_p99", "manifest GET p99, idle", percentile(idle, 99));
      add("api_busy_p99", "manifest GET p99, during the storage walk", percentile(busy, 99));
      add("api_busy_n", "manifest GETs served during the walk", busy.length, "requests");
      const rendered = await browserRender([
        { id: "render_repos", url: `${u}/?fresh`, rows: "#repository-results tbody tr" },
        { id: "render_tags", url: `${u}/ui/r/zeta/big-tags`, rows: "#tag-results tbody tr" },
      ]);
      if (rendered) {
        add(
          "render_repos",
          "Chromium: repositories page drawn (warm server)",
          rendered.render_repos,
        );
        add("render_tags", "Chromium: 5,000-tag repository page drawn", rendered.render_tags);
      }
    } finally {
      await server.shutdown(2000);
    }
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return Object.entries(samples).map(([id, { label, unit, runs }]) => ({
    id,
    label,
    unit,
    median: median(runs),
    runs,
  }));
}

export function uiTable(figures: UiFigure[]): string {
  const rows = figures.map((f) => [
    f.label,
    `${f.unit === "ms" ? f.median.toFixed(1) : Math.round(f.median)} ${f.unit}`,
    f.runs.map((r) => (f.unit === "ms" ? r.toFixed(1) : String(Math.round(r)))).join(", "),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), 6));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ")).join("\n");
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const figures = await benchUi({ runs: quick ? 2 : 3, quick });
  console.log(uiTable(figures));
}
