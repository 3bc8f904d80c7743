// Retention (src/maintenance/retention.ts) over a simulated week of CI pushes: exactly the expected
// tags survive, images go with their referrers and children, dry runs plan what real runs delete.

import { runGc, startGcLoop } from "../../src/maintenance/gc.ts";
import { applyRetention, type Deletion } from "../../src/maintenance/retention.ts";
import { parseDigest } from "../../src/grammar.ts";
import { policiesFrom } from "../../src/policy/policies.ts";
import { readConfigFile } from "../../src/settings/file.ts";
import { flushPulls, recordPull } from "../../src/store/pulls.ts";
import type { Store } from "../../src/store/store.ts";
import { assert, assertEquals } from "../helpers.ts";
import {
  allTags,
  type Clock,
  clock,
  DAY,
  HOUR,
  pushImage,
  pushIndex,
  pushReferrer,
  seededStore,
  T0,
} from "../policy/seed.ts";

const CONFIG = `
retention:
  - repositories: ci/**
    keep-last: 10
    keep-tags: ^v\\d+
    older-than: 3d
    untagged-after: 1d
  - repositories: stale/**
    not-pulled-for: 2d
immutable-tags:
  - repositories: ci/**
    tags: ^main-
`;

function policies(text = CONFIG) {
  const { settings, problems } = readConfigFile("retention.yaml", text);
  assertEquals(problems, []);
  return policiesFrom({ sections: settings.sections });
}

interface History {
  /** tag → push time, per repository. */
  pushed: Map<string, Map<string, number>>;
  digests: Record<string, string>;
}

/**
 * A week of CI: a `pr-N` every 30 minutes, a `main-N` every 12 hours (immutable), a release
 * `v1.N` daily, indexes, a signature, untagged manifests; `stale/app` pulled now and then.
 */
async function seedWeek(store: Store, time: Clock): Promise<History> {
  const pushed = new Map<string, Map<string, number>>();
  const digests: Record<string, string> = {};
  const at = (name: string, tag: string) => {
    if (!pushed.has(name)) pushed.set(name, new Map());
    pushed.get(name)!.set(tag, time.now());
  };
  await flushPulls(store.state, T0); // pull records begin with the week
  let seed = 1;
  for (let minute = 0; minute < 7 * 24 * 60; minute += 30) {
    time.set(T0 + minute * 60_000);
    const n = minute / 30 + 1;
    const image = await pushImage(store, "ci/app", `pr-${n}`, seed++);
    digests[`pr-${n}`] = image.digest;
    at("ci/app", `pr-${n}`);
    if (n === 5) digests.signature = await pushReferrer(store, "ci/app", image, seed++);
    if (minute % (12 * 60) === 0) {
      await pushImage(store, "ci/app", `main-${minute / 720 + 1}`, seed++);
      at("ci/app", `main-${minute / 720 + 1}`);
    }
    if (minute % (24 * 60) === 12 * 60) {
      const day = Math.floor(minute / 1440) + 1;
      const release = await pushImage(store, "ci/app", `v1.${day}`, seed++);
      at("ci/app", `v1.${day}`);
      if (day === 3) {
        // The same image under a CI tag too: the tag goes, the manifest stays (v1.3 names it).
        await store.manifests.put(
          "ci/app",
          { tag: "pr-release" },
          release.manifest,
          release.descriptor.mediaType,
        );
        at("ci/app", "pr-release");
        digests["v1.3"] = release.digest;
      }
    }
  }
  time.set(T0 + 1 * DAY);
  const old = await pushIndex(store, "ci/app", "multi-1", [9001, 9002]);
  at("ci/app", "multi-1");
  Object.assign(digests, { "multi-1": old.index, "multi-1/0": old.children[0] });
  time.set(T0 + 2 * DAY);
  digests.untaggedOld = (await pushImage(store, "ci/app", undefined, 9003)).digest;
  time.set(T0 + 6.9 * DAY);
  const recent = await pushIndex(store, "ci/app", "multi-2", [9004, 9005]);
  at("ci/app", "multi-2");
  digests["multi-2/0"] = recent.children[0];
  time.set(T0 + 7 * DAY - HOUR);
  digests.untaggedYoung = (await pushImage(store, "ci/app", undefined, 9006)).digest;

  // stale/app: 20 tags pushed on the first day; some pulled since.
  for (let i = 1; i <= 20; i++) {
    time.set(T0 + i * HOUR);
    digests[`s-${i}`] = (await pushImage(store, "stale/app", `s-${i}`, 10_000 + i)).digest;
    at("stale/app", `s-${i}`);
  }
  const pull = (tag: string | undefined, digest: string, when: number) =>
    recordPull(store.state, "stale/app", parseDigest(digest)!, tag, when);
  for (let i = 1; i <= 5; i++) pull(`s-${i}`, digests[`s-${i}`], T0 + 6 * DAY);
  pull("s-6", digests["s-6"], T0 + 4 * DAY); // three days ago: goes
  pull(undefined, digests["s-7"], T0 + 6 * DAY); // by digest: the tag naming it stays
  await flushPulls(store.state, T0 + 6 * DAY);
  pull("s-8", digests["s-8"], T0 + 6.5 * DAY); // not flushed yet: counts all the same
  time.set(T0 + 6.5 * DAY);
  await pushImage(store, "stale/app", "fresh", 10_100);
  at("stale/app", "fresh");
  // prod/app: no rule covers it.
  time.set(T0);
  for (let i = 1; i <= 5; i++) {
    await pushImage(store, "prod/app", `old-${i}`, 20_000 + i);
    at("prod/app", `old-${i}`);
  }
  time.set(T0 + 7 * DAY);
  return { pushed, digests };
}

/** The survivors the rules call for, computed from the push times independently. */
function expectedSurvivors(history: History, now: number): Record<string, string[]> {
  const ci = [...history.pushed.get("ci/app")!];
  const newest = [...ci].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10)
    .map(([tag]) => tag);
  const ciKept = ci.filter(([tag, at]) =>
    /^main-/.test(tag) || /^v\d+/.test(tag) || newest.includes(tag) || now - at <= 3 * DAY
  ).map(([tag]) => tag);
  const stale = [...history.pushed.get("stale/app")!].map(([tag]) => tag)
    .filter((tag) => ["s-1", "s-2", "s-3", "s-4", "s-5", "s-7", "s-8", "fresh"].includes(tag));
  return {
    "ci/app": ciKept.sort(),
    "stale/app": stale.sort(),
    "prod/app": ["old-1", "old-2", "old-3", "old-4", "old-5"],
  };
}

const exists = async (store: Store, name: string, digest: string) =>
  (await store.manifests.get(name, { digest: parseDigest(digest)! })) !== undefined;

const plan = (deletions: Deletion[]) =>
  deletions.map(({ repository, kind, reference, reason }) => [repository, kind, reference, reason]);

Deno.test("retention: a simulated week of CI pushes leaves exactly the expected tags", async () => {
  const time = clock();
  const store = seededStore(time);
  const history = await seedWeek(store, time);
  const rules = policies();
  const retention = (
    repositories: Parameters<typeof applyRetention>[2],
    context: Parameters<typeof applyRetention>[3],
  ) => applyRetention(store, rules, repositories, context);
  const options = { grace: 0, untagged: false, now: time.now(), retention };

  const dry = await runGc(store.state, { ...options, dryRun: true });
  const real = await runGc(store.state, options);
  assert(real.retention && dry.retention);
  // The dry run printed what the real run deleted, line for line, and GC's own counts agree.
  assertEquals(plan(dry.retention.deletions), plan(real.retention.deletions));
  assert(real.retention.deletions.every((d) => d.deleted), "all deleted");
  assertEquals(real.retention.skipped, 0);
  assertEquals(dry.swept, real.swept);
  assertEquals(dry.marked, real.marked);

  const expected = expectedSurvivors(history, time.now());
  for (const name of ["ci/app", "stale/app", "prod/app"]) {
    assertEquals(await allTags(store, name), expected[name], name);
  }
  const survivors = new Set(expected["ci/app"]);
  assert(!survivors.has("pr-1") && survivors.has("pr-336") && survivors.has("main-1"));
  assertEquals(expected["ci/app"].filter((t) => t.startsWith("pr-")).length, 3 * 48);

  const { digests } = history;
  // The images of deleted tags went, with the signature of pr-5 and the children of multi-1.
  assert(!await exists(store, "ci/app", digests["pr-5"]), "pr-5's image went");
  assert(!await exists(store, "ci/app", digests.signature), "its signature went with it");
  assert(!await exists(store, "ci/app", digests["multi-1"]), "the old index went");
  assert(!await exists(store, "ci/app", digests["multi-1/0"]), "with its children");
  assert(await exists(store, "ci/app", digests["multi-2/0"]), "a kept index keeps its children");
  assert(await exists(store, "ci/app", digests["v1.3"]), "a manifest a kept tag names stays");
  assert(!await exists(store, "ci/app", digests.untaggedOld), "untagged for 5 days: gone");
  assert(await exists(store, "ci/app", digests.untaggedYoung), "untagged for an hour: kept");
  const reasons = Object.fromEntries(
    real.retention.deletions.map((d) => [`${d.repository} ${d.reference}`, d.reason]),
  );
  assertEquals(
    reasons["ci/app pr-1"],
    "retention rule 1 (ci/**): older than 3d (pushed 2026-11-01T00:00:00Z)",
  );
  assertEquals(
    reasons[`ci/app ${digests.signature}`],
    `retention rule 1 (ci/**): referrer of deleted ${digests["pr-5"]}`,
  );
  assertEquals(
    reasons["stale/app s-6"],
    "retention rule 2 (stale/**): not pulled for 2d (last pulled 2026-11-05T00:00:00Z)",
  );
  assertEquals(
    reasons["stale/app s-9"],
    "retention rule 2 (stale/**): not pulled for 2d (never pulled since 2026-11-01T09:00:00Z)",
  );

  // A second pass finds nothing more to do.
  const again = await runGc(store.state, options);
  assertEquals(again.retention?.deletions, []);
});

Deno.test("retention: nothing is 'not pulled' before pull records began", async () => {
  const time = clock();
  const store = seededStore(time, { recordPulls: false });
  await pushImage(store, "stale/app", "old", 1);
  time.set(T0 + 30 * DAY);
  const report = await runGc(store.state, {
    grace: 0,
    untagged: false,
    now: time.now(),
    retention: (repositories, context) => applyRetention(store, policies(), repositories, context),
  });
  assertEquals(report.retention?.deletions, []);
  assertEquals(await allTags(store, "stale/app"), ["old"]);
});

Deno.test("retention: keep-last alone keeps the N newest and whatever keep-tags names", async () => {
  const time = clock();
  const store = seededStore(time);
  for (let i = 1; i <= 12; i++) {
    time.set(T0 + i * 60_000);
    await pushImage(store, "team/app", `build-${String(i).padStart(2, "0")}`, i);
  }
  await pushImage(store, "team/app", "stable", 99);
  const rules = policies(`
retention:
  - repositories: "team/*"
    keep-last: 3
    keep-tags: ["^stable$", "^build-01$"]
`);
  const report = await runGc(store.state, {
    grace: 0,
    untagged: false,
    now: time.now(),
    retention: (repositories, context) => applyRetention(store, rules, repositories, context),
  });
  assertEquals(await allTags(store, "team/app"), ["build-01", "build-11", "build-12", "stable"]);
  assertEquals(
    report.retention?.deletions.find((d) => d.reference === "build-02")?.reason,
    "retention rule 1 (team/*): not among the 3 most recently pushed",
  );
});

Deno.test("retention: tag pages have no gaps or duplicates while a pass deletes between them", async () => {
  const time = clock();
  const store = seededStore(time);
  for (let i = 0; i < 300; i++) {
    time.set(T0 + i * HOUR);
    await pushImage(store, "ci/app", `t-${String(i).padStart(3, "0")}`, i + 1);
  }
  time.set(T0 + 300 * HOUR);
  const first = await store.tags("ci/app", { n: 100 });
  // Deletes tags before and after the page boundary, the boundary tag itself among them.
  await runGc(store.state, {
    grace: 0,
    untagged: false,
    now: time.now(),
    retention: (repositories, context) =>
      applyRetention(
        store,
        policies(`
retention:
  - repositories: ci/**
    older-than: 5d
    keep-tags: "[02468]$"
`),
        repositories,
        context,
      ),
  });
  const listed = [...first.items];
  let last = first.next;
  while (last !== undefined) {
    const page = await store.tags("ci/app", { n: 100, last });
    listed.push(...page.items);
    last = page.next;
  }
  const sorted = [...listed].sort();
  assertEquals(listed, sorted, "in order");
  assertEquals(new Set(listed).size, listed.length, "no duplicates");
  const boundary = first.items[first.items.length - 1];
  const survivors = await allTags(store, "ci/app");
  assert(!survivors.includes(boundary), "the boundary tag itself was deleted");
  assertEquals(listed.filter((tag) => tag > boundary), survivors.filter((tag) => tag > boundary));
});

Deno.test("retention: pushes racing a pass never lose a tag the rules keep", async () => {
  const time = clock();
  const store = seededStore(time);
  // 600 old CI tags (all due to go), pushed on the first day.
  const old: string[] = [];
  for (let i = 0; i < 600; i++) {
    time.set(T0 + i * 60_000);
    old.push(`pr-${i}`);
    await pushImage(store, "ci/app", `pr-${i}`, i + 1);
  }
  time.set(T0 + 7 * DAY);
  const rules = policies();
  // CI re-pushes a third of the old tags (half the same image, half a new one) and pushes new
  // ones, after the pass planned and before it deletes (the worst moment): all of them are
  // fresh, so the rules keep them.
  const kept: string[] = [];
  const racing = () => {
    const pushes: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i += 3) {
      kept.push(`pr-${i}`);
      pushes.push(pushImage(store, "ci/app", `pr-${i}`, i % 2 === 0 ? i + 1 : 50_000 + i));
      kept.push(`new-${i}`);
      pushes.push(pushImage(store, "ci/app", `new-${i}`, 60_000 + i));
    }
    return Promise.all(pushes);
  };
  let raced: Promise<unknown> | undefined;
  const racedStore = {
    ...store,
    manifests: {
      ...store.manifests,
      delete: async (...args: Parameters<Store["manifests"]["delete"]>) => {
        await (raced ??= racing());
        return store.manifests.delete(...args);
      },
    },
  };
  const report = await runGc(store.state, {
    grace: 0,
    untagged: false,
    now: time.now(),
    retention: (repositories, context) => applyRetention(racedStore, rules, repositories, context),
  });
  const tags = new Set(await allTags(store, "ci/app"));
  const lost = kept.filter((tag) => !tags.has(tag));
  assertEquals(lost, [], "tags the rules keep");
  for (const tag of kept) {
    const manifest = await store.manifests.get("ci/app", { tag });
    assert(manifest, `${tag} resolves to a stored manifest`);
  }
  // The race happened: the pass planned deletions that the pushes made stale.
  // Spared: the 197 re-pushed tags the plan had (pr-591…597 are among the 10 newest anyway),
  // and the 99 of their images pushed again unchanged (their records were written anew).
  assertEquals(report.retention!.skipped, 197 + 99);
  // The next pass deletes exactly the old tags nobody pushed again.
  await runGc(store.state, {
    grace: 0,
    untagged: false,
    now: time.now(),
    retention: (repositories, context) => applyRetention(store, rules, repositories, context),
  });
  assertEquals(await allTags(store, "ci/app"), [...kept].sort());
});

Deno.test("gc loop: no pass runs while paused (read-only mode); passes resume after", async () => {
  const store = seededStore(clock());
  let paused = true;
  let asked = 0;
  let passes = 0;
  const loop = startGcLoop(store.state, {
    interval: 5,
    grace: 0,
    untagged: false,
    uploadTtl: DAY,
    paused: () => (asked++, paused),
    finished: () => passes++,
  });
  try {
    while (asked < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    assertEquals(passes, 0, "no pass while paused");
    paused = false;
    while (passes < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  } finally {
    await loop.stop();
  }
});
