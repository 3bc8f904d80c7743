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
  /** Whether these exact credentials passed a check lately: no bcrypt, no limits needed. */
  known(user: string, password: string): Promise<boolean>;
  /** Whether the user is (still) in the file. */
  has(user: string): Promise<boolean>;
  /**
   * Reads the file now (a config reload); resolves to the switch that puts its entries in
   * force, or throws naming the bad line (then the entries in force stay).
   */
  prepareReload(): Promise<() => void>;
}

export interface HtpasswdOptions {
  /** How long a successful check is remembered since its last use (default 60 s). */
  cacheTtlMs?: number;
  /** The file is stat'ed at most this often (default 1 s). */
  recheckMs?: number;
  /** The bcrypt comparison; the server passes its worker pool (src/auth/bcrypt_pool.ts). */
  compare?: (password: string, hash: string) => Promise<boolean>;
  now?: () => number;
}

/** Reads the file now (throwing on a bad entry) and again whenever its mtime or size changes. */
export async function loadHtpasswd(path: string, options: HtpasswdOptions = {}): Promise<Htpasswd> {
  const now = options.now ?? Date.now;
  const ttl = options.cacheTtlMs ?? 60_000;
  const recheckMs = options.recheckMs ?? 1000;
  const compare = options.compare ?? ((password, hash) => bcrypt.compare(password, hash));
  let stamp = fileStamp(await Deno.stat(path));
  let entries = parseFile(await Deno.readTextFile(path), path);
  let costliest = costliestHash(entries);
  let checkedAt = now();
  let reloading: Promise<void> | undefined;
  const cache = new Map<string, number>();
  /** Checks under way, by credentials: concurrent logins of one client pay one bcrypt. */
  const checking = new Map<string, Promise<boolean>>();

  const refresh = async () => {
    try {
      const info = await Deno.stat(path);
      if (fileStamp(info) === stamp) return;
      const text = await Deno.readTextFile(path);
      entries = parseFile(text, path);
      costliest = costliestHash(entries);
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
      reloading ??= refresh().finally(() => reloading = undefined);
    }
    if (reloading) await reloading;
    return entries;
  };
  /** The cache key of credentials: their hash with the stored entry's, so a change misses. */
  const keyOf = (user: string, password: string, stored: string | undefined) =>
    createHash("sha256").update(`${user}\0${password}\0${stored ?? ""}`).digest("base64");
  const cached = (key: string) => {
    const expiry = cache.get(key);
    if (expiry === undefined || expiry <= now()) return false;
    cache.set(key, now() + ttl);
    return true;
  };
  const remember = (key: string) => {
    if (cache.size >= 10_000) {
      for (const [k, expiry] of cache) if (expiry <= now()) cache.delete(k);
      if (cache.size >= 10_000) cache.clear();
    }
    cache.set(key, now() + ttl);
  };

  return {
    async verify(user, password) {
      const stored = (await current()).get(user);
      const key = keyOf(user, password, stored);
      if (stored && cached(key)) return true;
      let check = checking.get(key);
      if (!check) {
        // An unknown user costs a bcrypt of the file's costliest hash, so timing tells nothing.
        const hash = stored ?? costliest;
        check = hash === undefined
          ? Promise.resolve(false)
          : compare(password, hash).then((ok) => ok && stored !== undefined);
        checking.set(key, check);
        check.finally(() => checking.delete(key)).catch(() => {});
      }
      const ok = await check;
      if (ok) remember(key);
      return ok;
    },
    async known(user, password) {
      const stored = (await current()).get(user);
      return stored !== undefined && cached(keyOf(user, password, stored));
    },
    async has(user) {
      return (await current()).has(user);
    },
    async prepareReload() {
      const info = await Deno.stat(path);
      const next = parseFile(await Deno.readTextFile(path), path);
      return () => {
        if (fileStamp(info) === stamp) return;
        entries = next;
        costliest = costliestHash(next);
        stamp = fileStamp(info);
        cache.clear();
        log.info("htpasswd reloaded", { "file.path": path, "auth.users": entries.size });
      };
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

function costliestHash(entries: Map<string, string>): string | undefined {
  let costliest: string | undefined;
  for (const hash of entries.values()) {
    if (!costliest || Number(BCRYPT.exec(hash)![1]) > Number(BCRYPT.exec(costliest)![1])) {
      costliest = hash;
    }
  }
  return costliest;
}
