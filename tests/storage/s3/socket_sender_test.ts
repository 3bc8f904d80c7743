// The S3 client's socket sender (src/storage/s3/socket_sender.ts) against a scripted TCP server:
// bodies arrive whole, length and chunked answers are read, kept-alive connections are reused.

import { createSocketSender } from "../../../src/storage/s3/socket_sender.ts";
import { assertEquals, digest, randomBytes, text } from "../../helpers.ts";

/**
 * A TCP server that reads each request (head + content-length body) and writes `answer(n)`
 * for the n-th request on that connection; `closeAfter` requests, it closes the connection.
 */
function scriptedServer(answer: (n: number) => string, closeAfter = Infinity) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const bodies: Uint8Array[] = [];
  let connections = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      serve(conn).catch(() => {}).finally(() => conn.close());
    }
  })();
  async function serve(conn: Deno.Conn) {
    let buffered = new Uint8Array(0);
    const more = async () => {
      const chunk = new Uint8Array(64 * 1024);
      const n = await conn.read(chunk);
      if (n === null) throw new Error("closed");
      const next = new Uint8Array(buffered.length + n);
      next.set(buffered);
      next.set(chunk.subarray(0, n), buffered.length);
      buffered = next;
    };
    for (let n = 1; n <= closeAfter; n++) {
      let end: number;
      while ((end = text(buffered).indexOf("\r\n\r\n")) < 0) await more();
      const head = text(buffered.subarray(0, end));
      const length = Number(/content-length: (\d+)/i.exec(head)![1]);
      while (buffered.length < end + 4 + length) await more();
      bodies.push(buffered.slice(end + 4, end + 4 + length));
      buffered = buffered.slice(end + 4 + length);
      await conn.write(new TextEncoder().encode(answer(n)));
    }
  }
  return {
    origin: new URL(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`),
    bodies,
    connections: () => connections,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

Deno.test("socket sender: bodies arrive whole and one connection serves request after request", async () => {
  await using server = scriptedServer((n) => ok(`answer ${n}`));
  const sender = createSocketSender(server.origin);
  const body = randomBytes(1024 * 1024 + 17, 4);
  for (const n of [1, 2, 3]) {
    const response = await sender.send("PUT", "/b/k", new Headers({ "x-a": "1" }), body, 10_000);
    assertEquals([response.status, text(response.body)], [200, `answer ${n}`]);
  }
  sender.close();
  assertEquals(server.bodies.map((b) => digest(b)), Array(3).fill(digest(body)));
  assertEquals(server.connections(), 1);
});

Deno.test("socket sender: a chunked answer is read whole, headers and all", async () => {
  await using server = scriptedServer(() =>
    "HTTP/1.1 403 Forbidden\r\ntransfer-encoding: chunked\r\nx-amz-request-id: r1\r\n\r\n" +
    "6\r\n<Error\r\n1;ext=1\r\n>\r\n0\r\nx-trailer: t\r\n\r\n"
  );
  const sender = createSocketSender(server.origin);
  const response = await sender.send("PUT", "/b/k", new Headers(), new Uint8Array(10), 10_000);
  sender.close();
  assertEquals(response.status, 403);
  assertEquals(response.headers.get("x-amz-request-id"), "r1");
  assertEquals(text(response.body), "<Error>");
});

Deno.test("socket sender: a kept-alive connection the server closed is retried on a fresh one", async () => {
  await using server = scriptedServer((n) => ok(`answer ${n}`), 1);
  const sender = createSocketSender(server.origin);
  const body = randomBytes(70_000, 5);
  assertEquals(
    text((await sender.send("PUT", "/b/1", new Headers(), body, 10_000)).body),
    "answer 1",
  );
  assertEquals(
    text((await sender.send("PUT", "/b/2", new Headers(), body, 10_000)).body),
    "answer 1",
  );
  sender.close();
  assertEquals(server.connections(), 2);
  assertEquals(server.bodies.length, 2);
});
