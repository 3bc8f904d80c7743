// Owns durations on the command line: `30s`, `1h`, `24h`, `1h30m`, `500ms`, `0` to milliseconds.
// Used by the GC and upload-expiry flags (--gc-interval, --gc-grace, --upload-ttl).

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds in a duration such as `1h30m` or `45s`; undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (value === "0") return 0;
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(amount) * UNITS[unit];
  }
  return Number.isSafeInteger(Math.round(total)) ? Math.round(total) : undefined;
}

/** A duration for humans and logs: `1h30m`, `45s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const unit of ["d", "h", "m", "s", "ms"]) {
    const size = UNITS[unit];
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
