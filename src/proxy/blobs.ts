// Owns proxied blobs: served from the cache, else streamed from the upstream to the client and into
// storage at once, one download however many clients ask (src/proxy/flights.ts; issue 13).

import { RegistryError } from "../errors.ts";
import type { Digest } from "../grammar.ts";
import { log } from "../log.ts";
import type { ByteRange } from "../store/store.ts";
import { localError, type ProxyContext, upstreamFailed } from "./context.ts";
import { type Flight, startFlight } from "./flights.ts";
import type { ProxiedName } from "./routing.ts";

export function proxyBlobs(ctx: ProxyContext) {
  const { local } = ctx;
  /** `name@digest` → its download, while it runs. */
  const flights = new Map<string, Promise<Flight>>();

  async function size(name: string, digest: Digest): Promise<number | undefined> {
    const route = ctx.proxied(name);
    const stored = await local.blobs.size(name, digest);
    if (!route || stored !== undefined) return stored;
    const flight = await flights.get(`${name}@${digest.value}`)?.catch(() => undefined);
    if (flight?.size !== undefined) return flight.size;
    return ctx.once(`size:${name}@${digest.value}`, () => headBlob(route, name, digest));
  }

  /** The upstream's size of a blob; a blob stored here already is linked, not downloaded. */
  async function headBlob(route: ProxiedName, name: string, digest: Digest) {
    const { remote } = route;
    const started = performance.now();
    try {
      const response = await ctx.client(route).request(remote, `${remote}/blobs/${digest.value}`, {
        method: "HEAD",
      });
      await response.body?.cancel();
      if (response.status === 404) return undefined;
      const length = Number(response.headers.get("content-length") ?? NaN);
      if (response.status !== 200 || !Number.isSafeInteger(length)) {
        throw upstreamFailed(route, `answered ${response.status} for blob ${digest.value}`);
      }
      // The upstream vouches that this repository has the blob: bytes another repository
      // brought are linked here instead of fetched again.
      // A link that cannot be made (read-only mode) only means a download.
      const linked = await local.uploads.mount(name, digest.value, null).catch(() => undefined);
      const result = linked ? "hit" : "miss";
      ctx.report(route, name, digest.value, result, performance.now() - started);
      return linked ? await local.blobs.size(name, digest) ?? length : length;
    } catch (error) {
      throw localError(error);
    }
  }

  async function read(
    name: string,
    digest: Digest,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const route = ctx.proxied(name);
    if (!route || await local.blobs.size(name, digest) !== undefined) {
      if (route) ctx.report(route, name, digest.value, "hit");
      return local.blobs.read(name, digest, range);
    }
    const started = performance.now();
    const flight = await join(route, name, digest);
    if (!range) {
      const live = flight.join();
      if (live) {
        ctx.report(route, name, digest.value, "miss", performance.now() - started);
        return endsEarlyOnError(live);
      }
    }
    // A range, or too late to follow the download: from the store once it is there.
    try {
      await flight.done;
    } catch (error) {
      throw flightError(error, route);
    }
    ctx.report(route, name, digest.value, "miss", performance.now() - started);
    return local.blobs.read(name, digest, range);
  }

  /** The download of a blob under way, or a new one; BLOB_UNKNOWN when the upstream has none. */
  function join(route: ProxiedName, name: string, digest: Digest): Promise<Flight> {
    const key = `${name}@${digest.value}`;
    let flight = flights.get(key);
    if (!flight) {
      flight = download(route, name, digest);
      flights.set(key, flight);
      flight.then((f) => f.done).catch(() => {}).finally(() => flights.delete(key));
    }
    return flight;
  }

  async function download(route: ProxiedName, name: string, digest: Digest): Promise<Flight> {
    const { remote } = route;
    const abort = new AbortController();
    const started = performance.now();
    let response: Response;
    try {
      response = await ctx.client(route).request(remote, `${remote}/blobs/${digest.value}`, {
        signal: abort.signal,
      });
    } catch (error) {
      throw localError(error);
    }
    if (response.status !== 200 || !response.body) {
      await response.body?.cancel();
      if (response.status === 404) {
        throw new RegistryError(
          "BLOB_UNKNOWN",
          `upstream ${route.upstream.name} has no such blob`,
          {
            detail: { digest: digest.value },
          },
        );
      }
      throw localError(
        upstreamFailed(route, `answered ${response.status} for blob ${digest.value}`),
      );
    }
    const length = Number(response.headers.get("content-length") ?? NaN);
    const flight = startFlight({
      body: response.body,
      size: Number.isSafeInteger(length) ? length : undefined,
      abort: (reason) => abort.abort(reason),
    }, {
      // Hashed as they arrive, written behind: stored only if they match.
      ingest: (chunks) => local.uploads.ingest(name, digest, chunks),
      readStored: async (offset) => {
        if (offset === 0) return local.blobs.read(name, digest);
        const end = await local.blobs.size(name, digest) ?? offset;
        return local.blobs.read(name, digest, { start: offset, end });
      },
      idleTimeout: ctx.deps.idleTimeout,
    });
    const fields = {
      "proxy.upstream": route.upstream.name,
      "proxy.repository": name,
      "proxy.reference": digest.value,
    };
    flight.done.then(() => {
      log.info("proxy fetched", {
        ...fields,
        "proxy.bytes": flight.size,
        "duration_ms": Math.round(performance.now() - started),
      });
    }, (error) => {
      log.error("proxy fetch failed", {
        ...fields,
        "error.message": flightError(error, route).message,
      });
    });
    return flight;
  }

  return { size, read };
}

/** Why a download failed, in the upstream's terms (the commit's own words are an upload's). */
function flightError(error: unknown, route: ProxiedName): RegistryError {
  const upstream = `upstream ${route.upstream.name}`;
  if (error instanceof RegistryError && error.code === "DIGEST_INVALID") {
    return new RegistryError(
      "UNAVAILABLE",
      `${upstream} sent bytes that do not match the blob's digest; nothing was stored`,
      { status: 502 },
    );
  }
  if (error instanceof RegistryError && error.code === "BLOB_UPLOAD_INVALID") {
    const reason = (error.detail as { reason?: string } | undefined)?.reason ?? "";
    return new RegistryError("UNAVAILABLE", `${upstream} broke off the blob: ${reason}`, {
      status: 502,
    });
  }
  if (error instanceof RegistryError) return error;
  return new RegistryError("UNAVAILABLE", `${upstream}: ${(error as Error).message}`, {
    status: 502,
  });
}

/**
 * The stream, ended early instead of errored when the download fails: the response's
 * Content-Length tells the client its body broke off, the failure is logged once ("proxy fetch
 * failed"), and Deno.serve does not print the error to stderr beside the JSON logs.
 */
function endsEarlyOnError(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch {
        controller.close();
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}
