// Owns the listening socket and each connection's life: accept (retried with backoff when it
// fails), the connection cap, the header, keep-alive idle and body timeouts, graceful shutdown.
// HTTP/1.1 and HTTP/2 themselves (RFC 9112, RFC 9113) are Deno's, one connection at a time.

import { log } from "./log.ts";

/** Deno.serve's handler: the app's interface (src/app.ts). */
export type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response>;

/** Timeouts in ms, 0 = none. */
export interface ConnectionLimits {
  /** ms from a connection's opening to its first request: TLS handshake and request head. */
  headerTimeout: number;
  /** ms a connection may wait for its next request after a response. */
  idleTimeout: number;
  /** ms a read of a request body may wait for bytes; progress, however slow, resets it. */
  bodyTimeout: number;
  /** Connections open at once; beyond, the longest idle one is closed, or else the new one. */
  maxConnections: number;
}

export const DEFAULT_LIMITS = {
  headerTimeout: 30_000,
  idleTimeout: 60_000,
  bodyTimeout: 60_000,
} as const;

/**
 * Half the soft open-file limit (each connection may hold a file or an S3 socket besides its own),
 * at most 4096; 512 where the limit cannot be read (Linux's /proc tells it).
 */
export function defaultMaxConnections(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
    if (soft > 0) return Math.max(1, Math.min(4096, Math.floor(soft / 2)));
  } catch {
    // not Linux
  }
  return 512;
}

/** A request body's read in progress: when it began waiting for bytes (0: not waiting). */
export interface BodyWatch {
  waitingSince: number;
}

const bodyWatches = new WeakMap<Request, BodyWatch>();

/** The watch over a request's body reads (src/http.ts marks each read); undefined in tests. */
export function bodyWatch(request: Request): BodyWatch | undefined {
  return bodyWatches.get(request);
}

export interface ConnectionStats {
  open: number;
  accepted: number;
  /** Idle connections closed at the cap to make room for a new one. */
  evicted: number;
  /** New connections closed at once at the cap (none idle to make room). */
  refused: number;
  timedOut: { header: number; idle: number; body: number };
  acceptErrors: number;
}

export interface Listening {
  addr: Deno.NetAddr;
  stats: ConnectionStats;
  /** Stops accepting, lets requests in flight finish for up to `graceMs`, then cuts them. */
  shutdown(graceMs: number): Promise<void>;
}

interface Connection {
  /** Closes it at once, whatever it is doing. */
  cut: AbortController;
  /** Settles once its socket is closed. */
  closed: Promise<unknown>;
  /** Deno's server on it; absent while a TLS handshake runs. */
  server?: { finished: Promise<void>; shutdown(): Promise<void> };
  /** Requests in flight (several at once on HTTP/2). */
  active: number;
  served: number;
  /** When it opened or last fell idle. */
  since: number;
  watches: Set<BodyWatch>;
}

type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: Handler,
  onError: (error: unknown) => Response,
  onListen: () => void,
) => NonNullable<Connection["server"]>;

/**
 * Deno's HTTP server on one accepted connection (Deno.serve's own machinery, ext/http). Deno 2.9
 * exposes it only internally; Deno.serve itself has no timeout or connection cap, and ends when
 * one accept fails (EMFILE), so the accept loop and the limits are ours.
 */
function serveOnConnection(): ServeOnConnection | undefined {
  const key = Reflect.get(Deno, "internal");
  const internals = typeof key === "symbol" ? Reflect.get(Deno, key) : undefined;
  const serve = internals?.serveHttpOnConnection;
  return typeof serve === "function" ? serve : undefined;
}

/** True when this Deno can serve one connection at a time (else: Deno.serve, no limits). */
export const connectionLimitsSupported = (): boolean => serveOnConnection() !== undefined;

export function listen(
  options: { hostname: string; port: number; tls?: { cert: string; key: string } },
  limits: ConnectionLimits,
  handler: Handler,
): Listening {
  const serveOn = serveOnConnection();
  if (!serveOn) return serveWithoutLimits(options, handler);
  // Deno 2.9 reads the main thread's stack bounds (from /proc/self/maps) the first time it formats
  // a stack trace, and panics if no file descriptor is left for it then: have it read them now.
  void new Error("warm-up").stack;
  const listener = options.tls
    ? Deno.listenTls({ ...options, ...options.tls, alpnProtocols: ["h2", "http/1.1"] })
    : Deno.listen(options);
  const stats = noConnections();
  const open = new Set<Connection>();
  /** Connections with no request in flight, longest idle first. */
  const idle = new Set<Connection>();
  let closing = false;

  const close = (conn: Connection) => {
    idle.delete(conn);
    cut(conn.cut);
  };
  /** Closes the longest idle connection, if any; resolves once its socket is closed. */
  const evictIdle = (): Promise<void> | undefined => {
    const oldest = idle.values().next().value;
    if (!oldest) return undefined;
    close(oldest);
    stats.evicted++;
    return within(oldest.closed, 1000);
  };
  const onError = (error: unknown) => {
    log.error("request failed outside the app", { error });
    return new Response(null, { status: 500 });
  };

  const admit = (socket: Deno.Conn) => {
    const cut = new AbortController();
    const handle: Handler = (request, info) => {
      conn.active++;
      conn.served++;
      idle.delete(conn);
      // By method: reading `request.body` here would set up a body the app may never read.
      const watch = request.method === "GET" || request.method === "HEAD"
        ? undefined
        : { waitingSince: 0 };
      if (watch) {
        bodyWatches.set(request, watch);
        conn.watches.add(watch);
      }
      const done = () => {
        if (watch) conn.watches.delete(watch);
        if (--conn.active === 0 && open.has(conn) && !cut.signal.aborted) {
          conn.since = performance.now();
          idle.add(conn);
        }
      };
      // `completed` settles once the response is sent, or could not be.
      info.completed.then(done, done);
      return handler(request, info);
    };
    const { promise: closed, resolve: gone } = Promise.withResolvers();
    const conn: Connection = {
      cut,
      closed,
      active: 0,
      served: 0,
      since: performance.now(),
      watches: new Set(),
    };
    open.add(conn);
    idle.add(conn);
    stats.open = open.size;
    const remove = () => {
      open.delete(conn);
      idle.delete(conn);
      stats.open = open.size;
      gone(undefined);
    };
    const serve = () => {
      conn.server = serveOn(socket, cut.signal, handle, onError, () => {});
      conn.server.finished.catch((error) => log.debug("connection failed", { error }))
        .finally(remove);
    };
    if (!options.tls) return serve();
    // Deno's server cannot be cut during a TLS handshake, so the handshake is awaited here, where
    // the header timeout can drop the connection (Deno 2.9 still keeps the socket until the client
    // goes or finishes the handshake: rustls-tokio-stream waits for it, dropped or not).
    const closeSocket = () => closeQuietly(socket);
    cut.signal.addEventListener("abort", closeSocket, { once: true });
    (socket as Deno.TlsConn).handshake().then(() => {
      cut.signal.removeEventListener("abort", closeSocket);
      serve();
    }, () => {
      closeSocket();
      remove();
    });
  };

  const accepting = (async () => {
    let backoff = 0;
    while (!closing) {
      let socket: Deno.Conn;
      try {
        socket = await listener.accept();
        backoff = 0;
      } catch (error) {
        if (closing) return;
        stats.acceptErrors++;
        // Out of file descriptors (EMFILE) or memory: free what can be freed, wait, try again.
        backoff = Math.min(1000, Math.max(10, backoff * 2));
        warnOnce("accept failed, retrying", {
          "error.message": String((error as Error)?.message ?? error),
          "connections.open": open.size,
          "accept.errors": stats.acceptErrors,
          "accept.retry_ms": backoff,
        });
        await Promise.all([evictIdle(), sleep(backoff)]);
        continue;
      }
      stats.accepted++;
      // At the cap the longest idle connection makes room, and its socket is closed before the
      // next accept: closing lags behind accepting, and a flood would run out of descriptors.
      const room = open.size < limits.maxConnections ? undefined : evictIdle();
      if (open.size >= limits.maxConnections && !room) {
        stats.refused++;
        warnOnce("connection cap reached, refusing", { "connections.max": limits.maxConnections });
        closeQuietly(socket);
        continue;
      }
      try {
        admit(socket);
      } catch (error) { // the connection went before Deno's server took it
        log.debug("connection setup failed", { "error.message": String(error) });
        closeQuietly(socket);
      }
      await room;
    }
  })();

  // One sweep for all connections: a timer each would cost more than the requests.
  const { headerTimeout, idleTimeout, bodyTimeout } = limits;
  const shortest = Math.min(...[headerTimeout, idleTimeout, bodyTimeout].filter((t) => t > 0));
  const tick = Math.max(10, Math.min(1000, shortest / 4));
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const conn of idle) {
      const header = conn.served === 0;
      const limit = header ? headerTimeout : idleTimeout;
      if (limit > 0 && now - conn.since >= limit) {
        close(conn);
        stats.timedOut[header ? "header" : "idle"]++;
      }
    }
    for (const conn of bodyTimeout > 0 ? open : []) {
      for (const watch of conn.watches) {
        if (watch.waitingSince > 0 && now - watch.waitingSince >= bodyTimeout) {
          close(conn);
          stats.timedOut.body++;
          break;
        }
      }
    }
  }, tick);
  Deno.unrefTimer(sweep);

  return {
    addr: listener.addr as Deno.NetAddr,
    stats,
    async shutdown(graceMs) {
      closing = true;
      listener.close();
      await accepting;
      clearInterval(sweep);
      const timer = setTimeout(() => open.forEach(close), graceMs);
      await Promise.all([...open].map((conn) => {
        if (!conn.server) close(conn); // a TLS handshake has no request in flight
        return Promise.all([conn.server?.shutdown().catch(() => {}), conn.closed]);
      }));
      clearTimeout(timer);
    },
  };
}

/**
 * Aborts a connection's signal. Deno's listener on it throws BadResource when the connection closed
 * by itself a moment before (its close is under way, the server not finished yet); the error is
 * then reported as uncaught, which ends the process. Raised while cutting, it only means that
 * nothing was left to cut.
 */
function cut(controller: AbortController): void {
  if (!cutGuarded) {
    cutGuarded = true;
    globalThis.addEventListener("error", (event) => {
      if (cutting && event.error instanceof Deno.errors.BadResource) event.preventDefault();
    });
  }
  cutting = true;
  try {
    controller.abort();
  } finally {
    cutting = false;
  }
}
let cutting = false;
let cutGuarded = false;

function closeQuietly(socket: Deno.Conn): void {
  try {
    socket.close();
  } catch {
    // closed already
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Settles when `promise` does, or after `ms` at the latest. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise.catch(() => {}), new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

/** At most one warning a second per message, with the number left out. */
const warned = new Map<string, { at: number; skipped: number }>();
function warnOnce(message: string, properties: Record<string, unknown>) {
  const now = performance.now();
  const last = warned.get(message);
  if (last && now - last.at < 1000) {
    last.skipped++;
    return;
  }
  log.warn(message, { ...properties, "log.skipped": last?.skipped ?? 0 });
  warned.set(message, { at: now, skipped: 0 });
}

/** A Deno without per-connection serving: Deno.serve as it is, without timeouts or cap. */
function serveWithoutLimits(
  options: { hostname: string; port: number; tls?: { cert: string; key: string } },
  handler: Handler,
): Listening {
  log.warn("this Deno cannot serve one connection at a time: no connection timeouts or cap", {});
  const cut = new AbortController();
  const server = Deno.serve(
    { ...options, ...options.tls, signal: cut.signal, onListen() {} },
    handler,
  );
  return {
    addr: server.addr,
    stats: noConnections(),
    async shutdown(graceMs) {
      const timer = setTimeout(() => cut.abort(), graceMs);
      await server.shutdown();
      clearTimeout(timer);
    },
  };
}

/** Connection counters at zero. */
function noConnections(): ConnectionStats {
  return {
    open: 0,
    accepted: 0,
    evicted: 0,
    refused: 0,
    timedOut: { header: 0, idle: 0, body: 0 },
    acceptErrors: 0,
  };
}
