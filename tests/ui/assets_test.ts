// The UI's files are all embedded (text imports in src/ui/assets.ts, so `deno compile` carries
// them) and keep to the Content-Security-Policy: no inline script, style or event handler.

import { STATIC_FILES } from "../../src/ui/assets.ts";
import { assert, assertEquals } from "../helpers.ts";

const ROOT = new URL("../../src/ui/static/", import.meta.url);

async function walk(dir: URL, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) {
      files.push(...await walk(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`));
    } else files.push(prefix + entry.name);
  }
  return files.sort();
}

Deno.test("assets: every file under src/ui/static is embedded, with its exact bytes", async () => {
  const onDisk = await walk(ROOT);
  assertEquals(Object.keys(STATIC_FILES).sort(), onDisk);
  for (const path of onDisk) {
    assertEquals(STATIC_FILES[path].body, await Deno.readTextFile(new URL(path, ROOT)), path);
  }
});

Deno.test("assets: nothing inline that the CSP would block, no eval, no innerHTML", () => {
  for (const [path, file] of Object.entries(STATIC_FILES)) {
    if (path.endsWith(".html")) {
      assert(!/<script(?![^>]*\bsrc=)/.test(file.body), `${path}: inline script`);
      assert(!/<style|\sstyle=|\son[a-z]+=/.test(file.body), `${path}: inline style or handler`);
    }
    if (path.endsWith(".js")) {
      assert(
        !/\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|\beval\(|new Function/.test(file.body),
        `${path}: HTML from strings or eval`,
      );
      assert(!/localStorage|sessionStorage/.test(file.body), `${path}: web storage`);
    }
  }
});
