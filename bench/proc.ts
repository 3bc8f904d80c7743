// /proc helpers: CPU accounting (ours vs. other processes), process trees,
// peak RSS (VmHWM) and its reset (clear_refs).

export const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

export interface MachineJiffies {
  /** user + nice + system: time charged to processes (and kernel threads) */
  proc: number;
  /** irq + softirq: interrupt time charged to no process (e.g. loopback rx) */
  irq: number;
  steal: number;
  iowait: number;
  total: number;
}

/** Jiffies of the whole machine by kind, from /proc/stat. */
export function machineJiffies(): MachineJiffies {
  const line = (readText("/proc/stat") ?? "").split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1).map((x) => Number(x) || 0);
  // user nice system idle iowait irq softirq steal guest guest_nice
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const proc = user + nice + system;
  return {
    proc,
    irq: irq + softirq,
    steal,
    iowait,
    total: proc + irq + softirq + steal + idle + iowait,
  };
}

/** Jiffies used by kernel threads (children of kthreadd, PID 2). */
export function kernelThreadJiffies(): number {
  let t = 0;
  for (const e of Deno.readDirSync("/proc")) {
    const p = Number(e.name);
    if (!Number.isInteger(p)) continue;
    const st = pidStat(p);
    if (st && (st.ppid === 2 || p === 2)) t += st.self;
  }
  return t;
}

interface PidStat {
  ppid: number;
  /** utime + stime */
  self: number;
  /** cutime + cstime (reaped children) */
  children: number;
}

function pidStat(pid: number | "self"): PidStat | null {
  const s = readText(`/proc/${pid}/stat`);
  if (!s) return null;
  const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
  // rest[0] = state (field 3); field N is rest[N - 3]
  return {
    ppid: Number(rest[1]),
    self: Number(rest[11]) + Number(rest[12]),
    children: Number(rest[13]) + Number(rest[14]),
  };
}

/** pid and all its live descendants. */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    const p = Number(e.name);
    if (!Number.isInteger(p)) continue;
    const st = pidStat(p);
    if (st) parent.set(p, st.ppid);
  }
  const out = [pid];
  for (let i = 0; i < out.length && i < 10000; i++) {
    for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  }
  return out.filter((p) => parent.has(p));
}

/** CPU jiffies used by a process tree (live processes + reaped children). */
export function treeJiffies(pid: number): number {
  let t = 0;
  for (const p of processTree(pid)) {
    const st = pidStat(p);
    if (st) t += st.self + st.children;
  }
  return t;
}

/** CPU jiffies used by this process, all its descendants and reaped ones. */
export function ourJiffies(): number {
  return treeJiffies(Deno.pid);
}

export interface CpuSnapshot {
  t: number;
  machine: MachineJiffies;
  kthreads: number;
  ours: number;
  servers: Record<string, number>;
}

export function cpuSnapshot(servers: Record<string, number>): CpuSnapshot {
  const s: Record<string, number> = {};
  for (const [k, pid] of Object.entries(servers)) s[k] = treeJiffies(pid);
  return {
    t: performance.now(),
    machine: machineJiffies(),
    kthreads: kernelThreadJiffies(),
    ours: ourJiffies(),
    servers: s,
  };
}

export interface CpuUsage {
  seconds: number;
  /** Average cores used by user processes that are not ours. */
  othersCores: number;
  /** Kernel threads + irq/softirq (largely caused by our own I/O). */
  kernelCores: number;
  /** Steal time (other guests on the host). */
  stealCores: number;
  /** Average cores used by the whole machine (incl. kernel, excl. steal). */
  machineCores: number;
  /** Average cores used by our processes (bench + servers + tools). */
  oursCores: number;
  /** Average cores used by each server's process tree. */
  servers: Record<string, number>;
}

export function cpuUsage(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  const secs = (b.t - a.t) / 1000;
  const j = (x: number) => x / CLK_TCK / Math.max(secs, 1e-9);
  const proc = b.machine.proc - a.machine.proc;
  const irq = b.machine.irq - a.machine.irq;
  const kth = b.kthreads - a.kthreads;
  const ours = b.ours - a.ours;
  const servers: Record<string, number> = {};
  for (const k of Object.keys(b.servers)) {
    if (k in a.servers) servers[k] = j(b.servers[k] - a.servers[k]);
  }
  return {
    seconds: secs,
    othersCores: Math.max(0, j(proc - ours - kth)),
    kernelCores: Math.max(0, j(kth + irq)),
    stealCores: j(b.machine.steal - a.machine.steal),
    machineCores: j(proc + irq),
    oursCores: j(ours),
    servers,
  };
}

/** Resets the peak RSS counter (VmHWM) of a process tree. */
export function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      Deno.writeTextFileSync(`/proc/${p}/clear_refs`, "5");
    } catch { /* gone or not permitted */ }
  }
}

function statusKb(pid: number, key: string): number {
  const s = readText(`/proc/${pid}/status`) ?? "";
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(s);
  return m ? Number(m[1]) : 0;
}

/** Sum of VmHWM over a process tree, in bytes. */
export function peakRss(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) kb += statusKb(p, "VmHWM");
  return kb * 1024;
}

/** Sum of VmRSS over a process tree, in bytes. */
export function currentRss(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) kb += statusKb(p, "VmRSS");
  return kb * 1024;
}

export function procName(pid: number): string {
  return (readText(`/proc/${pid}/comm`) ?? "?").trim();
}
