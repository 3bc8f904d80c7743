// Rewrites the README's flag table from the flag table in src/config.ts (FLAGS): run it after
// adding a flag (`deno run -A scripts/readme_flags.ts`); tests/config_test.ts holds the two together.

import { envName, FLAGS } from "../src/config.ts";

const README = new URL("../README.md", import.meta.url);
const cell = (text: string) => text.replaceAll("|", "\\|");
const rows = FLAGS.filter((flag) => flag.name !== "help" && flag.name !== "version").map((flag) => {
  const env = envName(flag);
  const name = `\`--${flag.name}${flag.value ? ` ${flag.value}` : ""}\``;
  const variable = env ? `\`${env}${flag.value ? "" : "=true"}\`` : "";
  return `| ${cell(name)} | ${variable} | ${cell(flag.help)} |`;
});
const table = [
  "| flag | environment | meaning |",
  "| --- | --- | --- |",
  ...rows,
  "| `--help`, `--version` | | |",
].join("\n");

const text = await Deno.readTextFile(README);
const section = text.indexOf("## Flags\n");
const start = text.indexOf("\n| flag ", section) + 1;
const end = text.indexOf("\n\n", start);
if (section < 0 || start <= 0 || end < 0) throw new Error("no flag table under ## Flags");
await Deno.writeTextFile(README, text.slice(0, start) + table + text.slice(end));
const fmt = new Deno.Command(Deno.execPath(), { args: ["fmt", README.pathname] }).outputSync();
if (!fmt.success) throw new Error(new TextDecoder().decode(fmt.stderr));
