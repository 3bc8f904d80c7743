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

export const log: Logger = getLogger(["registry"]);

export async function setupLogging(
  options: { verbose: boolean; stream?: WritableStream<Uint8Array> },
) {
  await configure({
    reset: true,
    sinks: {
      stdout: getStreamSink(options.stream ?? Deno.stdout.writable, {
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
