// Owns logging: logtape configured for one JSON object per line on stdout, stable dotted keys.
// Until `setupLogging` runs (as in tests importing the app), loggers are silent.

import {
  configure,
  dispose,
  getJsonLinesFormatter,
  getLogger,
  getStreamSink,
  type Logger,
} from "@logtape/logtape";
import { concat } from "./bytes.ts";

export const log: Logger = getLogger(["registry"]);

export async function setupLogging(
  options: { verbose: boolean; stream?: WritableStream<Uint8Array> },
) {
  await configure({
    reset: true,
    sinks: {
      stdout: getStreamSink(options.stream ?? batchedWrites(Deno.stdout), {
        formatter: getJsonLinesFormatter({ properties: "flatten", message: "rendered" }),
      }),
    },
    loggers: [
      {
        category: ["registry"],
        lowestLevel: options.verbose ? "debug" : "info",
        sinks: ["stdout"],
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stdout"] },
    ],
  });
}

/** Flushes buffered log lines; call before exit. */
export const flushLogs: () => Promise<void> = dispose;

/** Pending bytes past which a log write waits for the flush (backpressure, not loss). */
const MAX_PENDING_BYTES = 1024 * 1024;

/**
 * Lines gathered and written with one syscall per turn of the event loop: under load, a write per
 * request line cost more than formatting it. Nothing is dropped; close() flushes.
 */
export function batchedWrites(out: { write(p: Uint8Array): Promise<number> }) {
  let pending: Uint8Array[] = [];
  let size = 0;
  let flushing: Promise<void> | undefined;
  async function flush() {
    try {
      while (pending.length > 0) {
        const batch = pending.length === 1 ? pending[0] : concat(pending, size);
        pending = [];
        size = 0;
        for (let at = 0; at < batch.length;) at += await out.write(batch.subarray(at));
      }
    } catch {
      pending = []; // stdout is gone: there is nowhere left to log to
      size = 0;
    } finally {
      flushing = undefined;
    }
  }
  return new WritableStream<Uint8Array>({
    write(line) {
      pending.push(line);
      size += line.length;
      flushing ??= new Promise((resolve) => setTimeout(resolve, 0)).then(flush);
      if (size > MAX_PENDING_BYTES) return flushing;
    },
    close: () => flushing,
  });
}
