// Owns the htpasswd file: bcrypt entries (Apache `htpasswd -B`), re-read on change, cached checks.
// Implements issue 5's Basic credentials store (distribution's registry/auth/htpasswd, bcrypt only).

import bcrypt from "bcryptjs";
import { createHash } from "node:crypto";
import { log } from "../log.ts";

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/** Parses the file: `user:hash` per line, blank lines and `#` comments skipped, bcrypt only. */
export function parseHtpasswd(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const where = `line ${index + 1}`;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`${where}: expected user:bcrypt-hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1).trim();
    if (!BCRYPT.test(hash)) {
      throw new Error(
        `${where}: the entry for "${user}" is not a bcrypt hash (make it with htpasswd -B)`,
      );
    }
    if (entries.has(user)) throw new Error(`${where}: "${user}" is listed twice`);
    entries.set(user, hash);
  });
  return entries;
}

export interface Htpasswd {
  /** Checks a password, in about the same time whether or not the user exists. */
  verify(user: string, password: string): Promise<boolean>;
  /** Whether the user is (still) in the file. */
  has(user: string): Promise<boolean>;
}

export interface HtpasswdOptions {
  /** How long a successful check is remembered (default 60 s). */
  cacheTtlMs?: number;
  /** The file is stat'ed at most this often (default 1 s). */
  recheckMs?: number;
  now?: () => number;
}

/** Reads the file now (throwing on a bad entry) and again whenever its mtime or size changes. */
export async function loadHtpasswd(path: string, options: HtpasswdOptions = {}): Promise<Htpasswd> {
  const now = options.now ?? Date.now;
  const ttl = options.cacheTtlMs ?? 60_000;
  const recheckMs = options.recheckMs ?? 1000;
  let stamp = fileStamp(await Deno.stat(path));
  let entries = parseFile(await Deno.readTextFile(path), path);
  let checkedAt = now();
  let checking: Promise<void> | undefined;
  const cache = new Map<string, number>();
  const dummies = new Map<number, string>();

  const refresh = async () => {
    try {
      const info = await Deno.stat(path);
      if (fileStamp(info) === stamp) return;
      const text = await Deno.readTextFile(path);
      entries = parseFile(text, path);
      stamp = fileStamp(info);
      cache.clear();
      log.info("htpasswd reloaded", { "file.path": path, "auth.users": entries.size });
    } catch (error) {
      log.error("htpasswd not reloaded, keeping the previous entries", {
        "file.path": path,
        "error.message": (error as Error).message,
      });
    }
  };
  const current = async () => {
    if (now() - checkedAt >= recheckMs) {
      checkedAt = now();
      checking ??= refresh().finally(() => checking = undefined);
    }
    if (checking) await checking;
    return entries;
  };
  const dummyHash = (cost: number) => {
    let hash = dummies.get(cost);
    if (!hash) {
      hash = bcrypt.hashSync(crypto.randomUUID(), cost);
      dummies.set(cost, hash);
    }
    return hash;
  };

  return {
    async verify(user, password) {
      const table = await current();
      const stored = table.get(user);
      const key = createHash("sha256").update(`${user}\0${password}\0${stored ?? ""}`).digest(
        "hex",
      );
      const cached = cache.get(key);
      if (stored && cached !== undefined && cached > now()) return true;
      // An unknown user costs one bcrypt too, at the file's own cost, so timing tells nothing.
      const hash = stored ?? dummyHash(highestCost(table));
      const ok = await bcrypt.compare(password, hash) && stored !== undefined;
      if (ok) {
        if (cache.size >= 10_000) {
          for (const [k, expiry] of cache) if (expiry <= now()) cache.delete(k);
          if (cache.size >= 10_000) cache.clear();
        }
        cache.set(key, now() + ttl);
      }
      return ok;
    },
    async has(user) {
      return (await current()).has(user);
    },
  };
}

function parseFile(text: string, path: string): Map<string, string> {
  try {
    return parseHtpasswd(text);
  } catch (error) {
    throw new Error(`htpasswd file ${path}: ${(error as Error).message}`);
  }
}

function fileStamp(info: Deno.FileInfo): string {
  return `${info.mtime?.getTime()}:${info.size}:${info.ino}`;
}

function highestCost(entries: Map<string, string>): number {
  let cost = 5;
  for (const hash of entries.values()) cost = Math.max(cost, Number(BCRYPT.exec(hash)![1]));
  return Math.min(cost, 14);
}
