// The stall bench's probe (bench/stall.ts), in a Worker of its own so that the bench's transfers do
// not delay it: GET /v2/ on one keep-alive connection, a short pause between requests, until told
// to stop; then it posts the latencies (ms).

import { HttpConn } from "./http.ts";

interface Start {
  host: string;
  port: number;
  pauseMs: number;
}

const self = globalThis as unknown as Worker & { close(): void };
let stop = false;
self.onmessage = async (event: MessageEvent<Start | "stop">) => {
  if (event.data === "stop") {
    stop = true;
    return;
  }
  const { host, port, pauseMs } = event.data;
  const c = new HttpConn(host, port);
  const latencies: number[] = [];
  const failures: string[] = [];
  self.postMessage({ started: true });
  try {
    while (!stop) {
      const t0 = performance.now();
      try {
        const r = await c.request("GET", "/v2/");
        if (r.status !== 200) failures.push(`HTTP ${r.status}`);
      } catch (error) {
        failures.push(String(error));
        c.close();
      }
      latencies.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  } finally {
    c.close();
  }
  self.postMessage({ latencies, failures });
  self.close();
};
