// hey (Debian's `hey`), the HTTP load generator the benches drive manifest lookups with: one run
// of it against a URL, its text report parsed into rates, latencies and failures.

import { OCI_MANIFEST } from "./oci.ts";

export interface HeyResult {
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  other: number;
  errors: number;
}

function parseHey(out: string): HeyResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  let ok = 0, other = 0, errors = 0;
  const statusPart = out.split("Status code distribution:")[1] ?? "";
  const [codes, errs] = statusPart.split("Error distribution:");
  for (const m of codes.matchAll(/\[(\d+)\]\s+(\d+) responses/g)) {
    if (m[1] === "200") ok += Number(m[2]);
    else other += Number(m[2]);
  }
  for (const m of (errs ?? "").matchAll(/^\s*\[(\d+)\]/gm)) {
    errors += Number(m[1]);
  }
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: num(/50%+ in ([\d.]+) secs/) * 1000,
    p99: num(/99%+ in ([\d.]+) secs/) * 1000,
    ok,
    other,
    errors,
  };
}

export async function runHey(
  url: string,
  method: string,
  conc: number,
  secs: number,
): Promise<HeyResult> {
  const o = await new Deno.Command("/usr/bin/hey", {
    args: [
      "-z",
      `${secs}s`,
      "-c",
      String(conc),
      "-m",
      method,
      "-H",
      `Accept: ${OCI_MANIFEST}`,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(o.stdout);
  const r = parseHey(text);
  if (!Number.isFinite(r.rps)) {
    throw new Error(`hey output not understood:\n${text}\n${new TextDecoder().decode(o.stderr)}`);
  }
  return r;
}
