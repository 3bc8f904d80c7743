// Checks that `deno task compile` builds a whole binary: deno compile leaves out worker modules
// unless named by --include, so every `new URL("./x.ts", import.meta.url)` a worker loads is named.

import { assert } from "./helpers.ts";

Deno.test("compile: the task --includes every worker module of src/", async () => {
  const root = new URL("../", import.meta.url);
  const task: string =
    JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks.compile;
  const included = [...task.matchAll(/--include[= ](\S+)/g)].map((match) => match[1]);
  const workers: string[] = [];
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(url);
        // A worker's module is a literal URL beside the file that starts it.
        for (const match of text.matchAll(/new URL\("(\.\/[\w./-]+\.ts)", import\.meta\.url\)/g)) {
          if (/_worker\.ts$/.test(match[1])) {
            workers.push(new URL(match[1], url).pathname.slice(new URL(root).pathname.length));
          }
        }
      }
    }
  };
  await walk(new URL("src/", root));
  assert(workers.length > 0, "the bcrypt pool starts a worker");
  for (const worker of workers) assert(included.includes(worker), `${worker} is not --included`);
});
