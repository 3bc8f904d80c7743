// Owns turning the command line, the environment and the config file into one command to run.
// main.ts calls it at start and on SIGHUP; `config check FILE` reports every problem it finds.

import { configPath, parseCommand, type ParsedCommand } from "../config.ts";
import { parsePolicy } from "../auth/policy.ts";
import { parseHtpasswd } from "../auth/htpasswd.ts";
import { readConfigFile } from "./file.ts";

export type LoadedCommand =
  | ParsedCommand
  /** The config file cannot be read or has problems: one line, exit status 1. */
  | { kind: "invalid"; message: string }
  /** `config check FILE`: every problem, one line each (none: the file is good). */
  | { kind: "checked"; path: string; problems: string[] };

/** Reads a file's text; main.ts passes Deno.readTextFile, tests a map. */
export type ReadText = (path: string) => Promise<string>;

/** The command, with the config file (if one is named) read and checked. */
export async function loadCommand(
  args: string[],
  env: Record<string, string | undefined>,
  read: ReadText,
): Promise<LoadedCommand> {
  const path = configPath(args, env);
  if (path === undefined) return parseCommand(args, env);
  let text: string;
  try {
    text = await read(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : (error as Error).message;
    const message = `cannot read config file ${path}: ${reason}`;
    return isCheck(args) ? { kind: "checked", path, problems: [message] } : invalid(message);
  }
  const { settings, problems } = readConfigFile(path, text);
  const command = parseCommand(args, env, settings);
  if (command.kind === "check") {
    if (problems.length === 0) problems.push(...await referencedFileProblems(command, read));
    return { kind: "checked", path, problems };
  }
  if (command.kind === "error" && isCheck(args)) {
    return { kind: "checked", path, problems: [...problems, command.message] };
  }
  if (problems.length === 0) return command;
  const more = problems.length - 1;
  return invalid(
    problems[0] + (more ? ` (and ${more} more: simple-registry config check ${path})` : ""),
  );
}

const invalid = (message: string): LoadedCommand => ({ kind: "invalid", message });

const isCheck = (args: string[]) => {
  const positionals = args.filter((arg) => !arg.startsWith("-"));
  return positionals[0] === "config" && positionals[1] === "check";
};

/** The files the settings name, read and parsed as the start would (access policy, htpasswd). */
async function referencedFileProblems(
  command: Extract<ParsedCommand, { kind: "check" }>,
  read: ReadText,
): Promise<string[]> {
  const problems: string[] = [];
  const files = [
    ["access policy", command.config.accessPolicy, parsePolicy],
    ["htpasswd", command.config.htpasswd, parseHtpasswd],
  ] as const;
  for (const [what, file, parse] of files) {
    if (file === undefined) continue;
    try {
      parse(await read(file));
    } catch (error) {
      const reason = error instanceof Deno.errors.NotFound
        ? "no such file"
        : (error as Error).message;
      problems.push(`${what} file ${file}: ${reason}`);
    }
  }
  return problems;
}
