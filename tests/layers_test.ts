// The layering of src/, read from its import statements: what each layer may import, no cycles,
// and only main.ts reading the command line or the environment, or exiting (README "Architecture").

import { dirname, join, relative } from "node:path";
import { assertEquals } from "./helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SRC = join(ROOT, "src");

/** Every `.ts` file under src/, as a path relative to the repository (`src/api/blobs.ts`). */
function sourceFiles(dir = SRC): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(relative(ROOT, path));
  }
  return files.sort();
}

/** The local modules a file imports (static `import … from "./x.ts"` and `export … from`). */
function localImports(file: string): string[] {
  const text = Deno.readTextFileSync(join(ROOT, file));
  const imports: string[] = [];
  for (const [, spec] of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/gms)) {
    imports.push(relative(ROOT, join(ROOT, dirname(file), spec)));
  }
  return imports;
}

const GRAPH = new Map(sourceFiles().map((file) => [file, localImports(file)]));

/** Which files of `from` import which of `to`. */
function edges(from: RegExp, to: RegExp): string[] {
  const found: string[] = [];
  for (const [file, imports] of GRAPH) {
    if (!from.test(file)) continue;
    for (const target of imports) if (to.test(target)) found.push(`${file} -> ${target}`);
  }
  return found;
}

const HTTP = /^src\/(api\/|app\.ts|http\.ts|routes\.ts|server\.ts)/;

Deno.test("layers: the API speaks to the store, never to storage keys or drivers", () => {
  assertEquals(edges(/^src\/api\//, /^src\/storage\//), []);
});

Deno.test("layers: the store, GC and fsck know nothing of HTTP", () => {
  assertEquals(edges(/^src\/(store|maintenance|oci|policy)\//, HTTP), []);
  assertEquals(edges(/^src\/(store|maintenance|oci|policy)\//, /^src\/auth\//), []);
});

Deno.test("layers: storage drivers import nothing above them", () => {
  assertEquals(edges(/^src\/storage\//, /^src\/(store|api|maintenance|auth|oci)\//), []);
  assertEquals(edges(/^src\/storage\//, HTTP), []);
});

Deno.test("layers: no import cycles in src/", () => {
  const cycles: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "visiting") {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    state.set(file, "visiting");
    for (const next of GRAPH.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, "done");
  };
  for (const file of GRAPH.keys()) visit(file, []);
  assertEquals(cycles, []);
});

Deno.test("layers: only main.ts reads the command line or the environment, or exits", () => {
  const offenders = [...GRAPH.keys()].filter((file) =>
    /\bDeno\.(args|env|exit)\b/.test(Deno.readTextFileSync(join(ROOT, file)))
  );
  assertEquals(offenders, []);
});
