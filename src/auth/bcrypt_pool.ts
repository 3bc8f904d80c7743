// Owns bcrypt off the event loop: a few Deno Workers compare passwords, checks pending bounded.
// Implements issue 18's password checks off the event loop, with a global bound on checks in flight.

/** Thrown when the pool already holds as many checks as it may: the caller answers 503. */
export class PoolBusyError extends Error {
  constructor() {
    super("too many password checks in progress");
    this.name = "PoolBusyError";
  }
}

export interface BcryptPool {
  /** Resolves to whether `password` matches the bcrypt `hash`; rejects PoolBusyError when full. */
  compare(password: string, hash: string): Promise<boolean>;
  /** Checks running or waiting now. */
  pending(): number;
  /** Stops the workers; checks running or waiting reject. */
  close(): void;
}

export interface BcryptPoolOptions {
  /** Workers at most (default: the cores less one for the event loop, 1 to 4). */
  workers?: number;
  /** Checks running or waiting at most (default 8 per worker); beyond, PoolBusyError. */
  maxPending?: number;
  /** All workers stop after this long without a check (default 30 s), freeing their memory. */
  idleMs?: number;
  /** The worker module; tests substitute their own. */
  workerUrl?: URL;
}

interface Job {
  id: number;
  password: string;
  hash: string;
  resolve: (ok: boolean) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  job?: Job;
}

export function createBcryptPool(options: BcryptPoolOptions = {}): BcryptPool {
  const size = Math.max(1, options.workers ?? Math.min(4, navigator.hardwareConcurrency - 1));
  const maxPending = options.maxPending ?? 8 * size;
  const idleMs = options.idleMs ?? 30_000;
  // A literal `new URL("./…", import.meta.url)`: `deno compile --include` ships the file.
  const workerUrl = options.workerUrl ?? new URL("./bcrypt_worker.ts", import.meta.url);
  const slots: Slot[] = [];
  const queue: Job[] = [];
  let running = 0;
  let nextId = 0;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;

  const stopAll = () => {
    for (const slot of slots.splice(0)) slot.worker.terminate();
  };
  const settle = (slot: Slot, settleJob: (job: Job) => void) => {
    const job = slot.job;
    if (!job) return;
    slot.job = undefined;
    running--;
    settleJob(job);
    dispatch();
  };
  const spawn = (): Slot => {
    const slot: Slot = { worker: new Worker(workerUrl, { type: "module" }) };
    slot.worker.onmessage = (
      { data }: MessageEvent<{ id: number; ok?: boolean; error?: string }>,
    ) => {
      if (data.id !== slot.job?.id) return;
      settle(
        slot,
        (job) =>
          data.error === undefined
            ? job.resolve(data.ok === true)
            : job.reject(new Error(data.error)),
      );
    };
    slot.worker.onerror = (event) => {
      event.preventDefault();
      slot.worker.terminate();
      slots.splice(slots.indexOf(slot), 1);
      settle(slot, (job) => job.reject(new Error(`bcrypt worker failed: ${event.message}`)));
    };
    slots.push(slot);
    return slot;
  };
  const dispatch = () => {
    clearTimeout(idleTimer);
    while (queue.length > 0) {
      const slot = slots.find((one) => !one.job) ?? (slots.length < size ? spawn() : undefined);
      if (!slot) break;
      const job = queue.shift()!;
      slot.job = job;
      running++;
      slot.worker.postMessage({ id: job.id, password: job.password, hash: job.hash });
    }
    if (running === 0 && slots.length > 0) {
      const timer = setTimeout(stopAll, idleMs);
      Deno.unrefTimer(timer);
      idleTimer = timer;
    }
  };

  return {
    compare(password, hash) {
      if (running + queue.length >= maxPending) return Promise.reject(new PoolBusyError());
      const { promise, resolve, reject } = Promise.withResolvers<boolean>();
      queue.push({ id: nextId++, password, hash, resolve, reject });
      try {
        dispatch();
      } catch (error) {
        // A worker that cannot start (its module missing from a compiled binary): said plainly.
        const job = queue.pop();
        job?.reject(new Error(`bcrypt worker did not start: ${(error as Error).message}`));
      }
      return promise;
    },
    pending: () => running + queue.length,
    close() {
      clearTimeout(idleTimer);
      const jobs = [...slots.flatMap((slot) => slot.job ?? []), ...queue.splice(0)];
      stopAll();
      running = 0;
      for (const job of jobs) job.reject(new Error("the bcrypt pool is closed"));
    },
  };
}
