// Summarises a V8 .cpuprofile (from `deno run --cpu-prof`): the functions with
// the most self time and the most total (inclusive) time.
//
//   deno run -A bench/profsum.ts PROFILE.cpuprofile [--top 25]
//
// Run the bench with the registry profiled:
//   BENCH_SR_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" deno run -A bench/main.ts --no-dist --only mono

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = Deno.args.find((a) => !a.startsWith("--"));
if (!file) {
  console.error("usage: deno run -A bench/profsum.ts FILE.cpuprofile [--top N]");
  Deno.exit(2);
}
const ti = Deno.args.indexOf("--top");
const TOP = ti >= 0 ? Number(Deno.args[ti + 1]) : 25;
const p: Profile = JSON.parse(await Deno.readTextFile(file));

const byId = new Map<number, Node>();
const parent = new Map<number, number>();
for (const n of p.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const selfUs = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i + 1] ?? 0;
  selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function key(n: Node): string {
  const f = n.callFrame;
  const url = f.url.replace(/^file:\/\//, "").replace(/^.*\/(src|bench)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${url ? `${url}:${f.lineNumber + 1}` : ""}`.trim();
}

const self = new Map<string, number>();
const incl = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (!n) continue;
  const k = key(n);
  self.set(k, (self.get(k) ?? 0) + us);
  // inclusive: each distinct function on the stack once
  const seen = new Set<string>();
  for (let cur: number | undefined = id, g = 0; cur !== undefined && g < 10000; g++) {
    const cn = byId.get(cur);
    if (!cn) break;
    const ck = key(cn);
    if (!seen.has(ck)) {
      seen.add(ck);
      incl.set(ck, (incl.get(ck) ?? 0) + us);
    }
    cur = parent.get(cur);
  }
}

const pct = (x: number) => `${(100 * x / Math.max(total, 1)).toFixed(1)}%`.padStart(6);
const ms = (x: number) => `${(x / 1000).toFixed(0)} ms`.padStart(10);
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
console.log(`\ntop ${TOP} by self time:`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
  console.log(`${pct(v)} ${ms(v)}  ${k}`);
}
console.log(`\ntop ${TOP} by total time:`);
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
  console.log(`${pct(v)} ${ms(v)}  ${k}`);
}
