// A stand-in for src/auth/bcrypt_worker.ts in the pool's tests: answers by the password it gets.
// "pool" → a match, "hold" → no answer ever, "crash" → the worker throws; anything else → no match.

const scope = self as unknown as Worker;
scope.onmessage = ({ data }: MessageEvent<{ id: number; password: string }>) => {
  if (data.password === "hold") return;
  if (data.password === "crash") throw new Error("crashed on purpose");
  scope.postMessage({ id: data.id, ok: data.password === "pool" });
};
