// What a stranger's connections may hold: live event streams are capped in all and per
// client (the extra refused with 429/503 and Retry-After), end after their age, and a
// client that sends its headers or body slowly is cut off; the health checks, the pages
// and submits keep answering meanwhile.
import http from "node:http";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, type Stack } from "./support/stack.ts";

interface Stream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ended: Promise<number>;
  close(): void;
}

/** Opens GET /events, resolving once the status is known; the stream stays open until close() or the server ends it. */
function openStream(base: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      new URL("/events", base),
      { agent: false, headers: { accept: "text/event-stream", ...headers } },
      (res) => {
        const stream: Stream = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: "",
          ended: new Promise((done) => res.on("close", () => done(Date.now()))),
          close: () => req.destroy(),
        };
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (stream.body += chunk));
        res.on("error", () => {});
        resolve(stream);
      },
    );
    req.on("error", reject);
  });
}

/** Opens `count` streams, a batch at a time, so the test itself stays within its descriptors. */
async function openMany(
  base: string,
  count: number,
  headersOf: (i: number) => Record<string, string> = () => ({}),
): Promise<Stream[]> {
  const streams: Stream[] = [];
  for (let i = 0; i < count; i += 100) {
    streams.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, (_, j) => openStream(base, headersOf(i + j))),
      )),
    );
  }
  return streams;
}

/** The app still does its job: health, readiness, the home page, a submit. */
async function stillServes(stack: Stack) {
  await stack.http().get("/healthz").expect(200);
  await stack.http().get("/readyz").expect(200);
  await stack.http().get("/").expect(200);
  await stack.http().post("/api/tasks").send({ breed: "hound", limit: 1 }).expect(202);
}

describe("live event streams", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      workers: 0,
      env: {
        EVENT_STREAMS_MAX: "1000",
        EVENT_STREAMS_PER_CLIENT: "5",
        EVENT_STREAM_MAX_AGE_MS: "60000",
        TRUST_PROXY: "loopback",
      },
    });
  });
  after(() => stack.stop());

  test(
    "when one client opens 2,000 streams, it gets 5 and the rest are refused with 429 and Retry-After, while the app keeps serving",
    { timeout: 120_000 },
    async () => {
      const streams = await openMany(stack.url, 2000);
      try {
        const accepted = streams.filter((s) => s.status === 200);
        const refused = streams.filter((s) => s.status === 429);
        assert.equal(accepted.length, 5);
        assert.equal(refused.length, 1995);
        assert.ok(
          refused.every((s) => Number(s.headers["retry-after"]) > 0),
          "every refusal says when to come back",
        );
        await stillServes(stack);
        const probe = await stack.http().head("/events").expect(429);
        assert.ok(Number(probe.headers["retry-after"]) > 0, "the browser's probe hears the same");
      } finally {
        streams.forEach((s) => s.close());
      }
    },
  );

  test(
    "when 2,000 clients open a stream each, 1,000 are held and the rest are refused with 503 and Retry-After; once they leave, streams are taken again",
    { timeout: 120_000 },
    async () => {
      // The stack trusts X-Forwarded-For from loopback (TRUST_PROXY, a proxy in front): each stream poses as its own
      // client.
      const client = (i: number) => ({ "x-forwarded-for": `10.0.${Math.floor(i / 250)}.${i % 250}` });
      const streams = await openMany(stack.url, 2000, client);
      try {
        assert.equal(streams.filter((s) => s.status === 200).length, 1000);
        const refused = streams.filter((s) => s.status === 503);
        assert.equal(refused.length, 1000);
        assert.ok(refused.every((s) => Number(s.headers["retry-after"]) > 0));
        assert.match(refused[0]!.body, /"code":"busy"/);
        await stillServes(stack);
      } finally {
        streams.forEach((s) => s.close());
      }
      const deadline = Date.now() + 10_000;
      let again: Stream | undefined;
      while (Date.now() < deadline) {
        again = await openStream(stack.url, client(5000));
        if (again.status === 200) break;
        again.close();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(again?.status, 200, "the places were given back");
      again!.close();
    },
  );
});

describe("a stream's age and the server's timeouts", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      workers: 0,
      env: {
        EVENT_STREAM_MAX_AGE_MS: "2000",
        HTTP_HEADERS_TIMEOUT_MS: "1000",
        HTTP_REQUEST_TIMEOUT_MS: "1500",
        HTTP_KEEPALIVE_TIMEOUT_MS: "1000",
      },
    });
  });
  after(() => stack.stop());

  test("when a stream reaches its age, the server ends it (after the request timeout passed without cutting it), and the client may come back with Last-Event-ID", async () => {
    const opened = Date.now();
    const stream = await openStream(stack.url);
    assert.equal(stream.status, 200);
    const endedAt = await stream.ended;
    assert.ok(
      endedAt - opened >= 1700,
      `held for ${endedAt - opened} ms: longer than the request timeout, about its age`,
    );
    assert.ok(endedAt - opened < 6000, `ended after ${endedAt - opened} ms`);
    const lastId = /^id: (\S+)$/m.exec(stream.body)?.[1];
    assert.ok(lastId, "the stream carried an event id to come back with");
    const back = await openStream(stack.url, { "last-event-id": lastId });
    assert.equal(back.status, 200);
    back.close();
  });

  test(
    "when 200 clients send a body one byte at a time, the server cuts them off after the request timeout, and keeps serving",
    { timeout: 30_000 },
    async () => {
      const started = Date.now();
      const closed = await Promise.all(
        Array.from({ length: 200 }, () =>
          trickle(
            stack.url,
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n",
            "{",
            400,
          ),
        ),
      );
      const slowest = Math.max(...closed) - started;
      assert.ok(slowest < 8000, `the last slow body was cut off after ${slowest} ms`);
      await stillServes(stack);
    },
  );

  test(
    "when a client sends its headers one byte at a time, the server cuts it off after the headers timeout",
    { timeout: 30_000 },
    async () => {
      const started = Date.now();
      const closedAt = await trickle(stack.url, "", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".padEnd(400, "a"), 200);
      assert.ok(closedAt - started < 6000, `cut off after ${closedAt - started} ms`);
    },
  );

  test("when a client keeps an idle connection open, the server closes it after the keep-alive timeout", async () => {
    const socket = net.connect(Number(new URL(stack.url).port), "127.0.0.1");
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(Date.now())));
    socket.on("error", () => {});
    socket.resume();
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    setTimeout(() => socket.destroy(), 20_000).unref();
    const closedAt = await closed;
    assert.ok(closedAt - started < 5000, `idle connection closed after ${closedAt - started} ms`);
  });
});

/** Sends `head` at once, then `slow` one character every `everyMs`; resolves when the server closes the socket. */
function trickle(base: string, head: string, slow: string, everyMs: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(base).port), "127.0.0.1");
    let i = 0;
    const timer = setInterval(() => {
      if (i < slow.length) socket.write(slow[i++]!);
    }, everyMs);
    socket.on("error", () => {});
    socket.resume(); // read what the server answers (a 408), or its close is never seen
    socket.on("close", () => {
      clearInterval(timer);
      resolve(Date.now());
    });
    socket.write(head);
    // Bounded: the test fails on its own assertion if the server never closes it.
    setTimeout(() => socket.destroy(), 20_000).unref();
  });
}
