// Owns one bcrypt thread: compares a password with a hash for the pool in src/auth/bcrypt_pool.ts.
// Implements the worker side of the pool's messages: {id, password, hash} → {id, ok} or {id, error}.

import bcrypt from "bcryptjs";
import { setPriority } from "node:os";

// The lowest priority for this thread alone (Linux applies it per thread): when the machine is
// busy, a login waits, the event loop serving requests does not.
try {
  setPriority(19);
} catch {
  // Not permitted here: bcrypt runs at the normal priority.
}

interface Job {
  id: number;
  password: string;
  hash: string;
}

const scope = self as unknown as Worker;
scope.onmessage = ({ data }: MessageEvent<Job>) => {
  try {
    scope.postMessage({ id: data.id, ok: bcrypt.compareSync(data.password, data.hash) });
  } catch (error) {
    scope.postMessage({ id: data.id, error: (error as Error).message });
  }
};
