// A webhook receiver for the event tests: records every POST, accepts or refuses on demand.
// It answers as a real endpoint would (2xx accepted, 5xx refused) on 127.0.0.1, port 0.

import type { RegistryEvent } from "../../src/ops/events/event.ts";
import { endpointForUrl, type NotifySettings } from "../../src/ops/events/settings.ts";

export interface Post {
  status: number;
  contentType: string | null;
  traceparent: string | null;
  authorization: string | null;
  events: RegistryEvent[];
}

export interface Receiver extends AsyncDisposable {
  url: string;
  /** Every POST in order of arrival, refused ones too. */
  posts: Post[];
  /** The events of accepted POSTs, in order of arrival. */
  accepted(): RegistryEvent[];
  /** While on, every POST is answered 503. */
  refuse(on: boolean): void;
  /** Each answer waits this long first (ms): deliveries are in flight for a while. */
  delay(ms: number): void;
  /** Resolves once `count` events were accepted; rejects after `timeoutMs` (a failure guard). */
  waitFor(count: number, timeoutMs?: number): Promise<RegistryEvent[]>;
  /** Resolves once events with `count` different ids were accepted (duplicates aside). */
  waitForIds(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `count` POSTs were refused. */
  waitForRefusals(count: number, timeoutMs?: number): Promise<void>;
}

export function startReceiver(port = 0): Receiver {
  const posts: Post[] = [];
  let refusing = false;
  let delayMs = 0;
  let changed = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    async (request) => {
      const body = await request.json() as { events: RegistryEvent[] };
      // Processed, then answered late: a sender that dies meanwhile never learns it was accepted.
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const status = refusing ? 503 : 200;
      posts.push({
        status,
        contentType: request.headers.get("content-type"),
        traceparent: request.headers.get("traceparent"),
        authorization: request.headers.get("authorization"),
        events: body.events,
      });
      changed.resolve();
      changed = Promise.withResolvers<void>();
      return new Response(null, { status });
    },
  );
  const accepted = () => posts.filter((post) => post.status < 300).flatMap((post) => post.events);
  const until = async (done: () => boolean, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`receiver: ${what} not reached within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([changed.promise, new Promise((r) => timer = setTimeout(r, left))]);
      clearTimeout(timer);
    }
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}/events`,
    posts,
    accepted,
    refuse(on) {
      refusing = on;
    },
    delay(ms) {
      delayMs = ms;
    },
    async waitFor(count, timeoutMs = 30_000) {
      await until(() => accepted().length >= count, timeoutMs, `${count} accepted events`);
      return accepted();
    },
    async waitForIds(count, timeoutMs = 30_000) {
      const ids = () => new Set(accepted().map((event) => event.id)).size;
      await until(() => ids() >= count, timeoutMs, `${count} distinct accepted events`);
    },
    async waitForRefusals(count, timeoutMs = 30_000) {
      const refused = () => posts.filter((post) => post.status >= 300).length;
      await until(() => refused() >= count, timeoutMs, `${count} refusals`);
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** One endpoint for the receiver, retrying fast (tests must not wait out a real backoff). */
export function fastNotify(url: string, overrides: Partial<NotifySettings> = {}): NotifySettings {
  return {
    endpoints: [{ ...endpointForUrl(url), name: "test", backoff: 20, maxBackoff: 100 }],
    maxPending: 100_000,
    ...overrides,
  };
}
