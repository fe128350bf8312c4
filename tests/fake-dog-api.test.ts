import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startFakeDogApi } from "../dev/fake-dog-api.ts";
import type { FakeDogApi } from "../dev/fake-dog-api.ts";

let api: FakeDogApi;

before(async () => {
  api = await startFakeDogApi({ port: 0 });
});

after(async () => {
  await api.close();
});

// The stand-in's JSON, checked field by field by each test.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function getJson(path: string): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${api.url}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

describe("the fake dog.ceo API", () => {
  test("when the full breed list is asked for, it answers a success map of breed to sub-breeds", async () => {
    const { status, headers, body } = await getJson("/breeds/list/all");

    assert.equal(status, 200);
    assert.equal(headers.get("access-control-allow-origin"), "*");
    assert.equal(body.status, "success");
    assert.deepEqual(body.message.hound, ["afghan", "basset", "blood", "english", "ibizan", "plott", "walker"]);
    assert.deepEqual(body.message.pug, []);
    const breeds = Object.keys(body.message);
    assert.equal(breeds.length, 107);
    assert.equal(Object.values<string[]>(body.message).flat().length, 94);
    assert.deepEqual(breeds, [...breeds].sort());
  });

  test("when random images are asked for, one reply holds distinct images of that sub-breed, served with no-store", async () => {
    const { status, headers, body } = await getJson("/breed/hound/afghan/images/random/50");

    assert.equal(status, 200);
    assert.equal(headers.get("cache-control"), "no-store");
    assert.equal(body.message.length, 50);
    assert.equal(new Set(body.message).size, 50);
    for (const url of body.message)
      assert.match(url, new RegExp(`^${api.origin}/images/breeds/hound-afghan/n\\d{8}_\\d+\\.svg$`));
  });

  test("when a main breed with sub-breeds is asked for, its images come from its sub-breed folders", async () => {
    const { body } = await getJson("/breed/hound/images/random/50");

    assert.equal(new Set(body.message).size, 50);
    for (const url of body.message)
      assert.match(url, /\/images\/breeds\/hound-(afghan|basset|blood|english|ibizan|plott|walker)\//);
  });

  test("when /random has no count, the message is a single image link", async () => {
    const { body } = await getJson("/breed/pug/images/random");

    assert.equal(typeof body.message, "string");
    assert.match(body.message, /\/images\/breeds\/pug\//);
  });

  for (const [count, expected] of [
    ["0", 1],
    ["-3", 1],
    ["abc", 1],
    ["1", 1],
    ["51", 50],
    ["1000", 50],
  ] as const) {
    test(`when the count is "${count}", the reply holds ${expected} image(s)`, async () => {
      const { body } = await getJson(`/breed/labrador/images/random/${count}`);

      assert.ok(Array.isArray(body.message));
      assert.equal(body.message.length, expected);
    });
  }

  test("when more images are asked for than the breed has (kelpie has 8), the reply holds all of them", async () => {
    const { body } = await getJson("/breed/kelpie/images/random/20");

    assert.equal(body.message.length, 8);
    assert.equal(new Set(body.message).size, 8);
  });

  test("when the breed is unknown, it answers 404 with the main-breed error JSON", async () => {
    const { status, body } = await getJson("/breed/unicorn/images/random/3");

    assert.equal(status, 404);
    assert.deepEqual(body, { status: "error", message: "Breed not found (main breed does not exist)", code: 404 });
  });

  test("when the sub-breed is unknown, or the breed has no sub-breeds, it answers 404 with the sub-breed error JSON", async () => {
    for (const path of ["/breed/hound/unicorn/images/random/3", "/breed/pug/small/images/random"]) {
      const { status, body } = await getJson(path);

      assert.equal(status, 404);
      assert.deepEqual(body, { status: "error", message: "Breed not found (sub breed does not exist)", code: 404 });
    }
  });

  test('when the route is unknown, it answers 404 with dog.ceo\'s "No route found" JSON', async () => {
    const { status, body } = await getJson("/breeds/nothing/here");

    assert.equal(status, 404);
    assert.deepEqual(body, {
      status: "error",
      message: 'No route found for "GET /api/breeds/nothing/here"',
      code: 404,
    });
  });

  test("when a breed's sub-breeds are asked for, it lists them (an empty list for a breed without any)", async () => {
    assert.deepEqual((await getJson("/breed/poodle/list")).body.message, ["medium", "miniature", "standard", "toy"]);
    assert.deepEqual((await getJson("/breed/kelpie/list")).body.message, []);
  });

  test("when an image link is followed, it serves an SVG picture naming the breed, cacheable for 30 days", async () => {
    const { body } = await getJson("/breed/hound/afghan/images/random");

    const res = await fetch(body.message, { signal: AbortSignal.timeout(5000) });
    const svg = await res.text();

    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/svg+xml");
    assert.equal(res.headers.get("cache-control"), "public, max-age=2592000, immutable");
    assert.match(svg, /^<\?xml[^>]*>\s*<svg /);
    assert.match(svg, /Afghan hound/);
  });

  test("when an image path does not exist, it answers 404", async () => {
    const res = await fetch(`${api.origin}/images/breeds/hound-afghan/nope.svg`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();

    assert.equal(res.status, 404);
  });

  test("when faults are queued, they are served in order and then normal replies resume", async () => {
    const before = api.requests;
    api.failNext("http500");
    api.failNext("http429");
    api.failNext("badJson");
    api.failNext("slow", 1, { delayMs: 150 });

    const first = await fetch(`${api.url}/breed/pug/images/random/2`);
    assert.equal(first.status, 500);
    assert.match(first.headers.get("content-type") ?? "", /text\/html/);
    await first.text();

    const second = await fetch(`${api.url}/breed/pug/images/random/2`);
    assert.equal(second.status, 429);
    assert.equal(second.headers.get("retry-after"), "1");
    await second.text();

    const third = await fetch(`${api.url}/breed/pug/images/random/2`);
    assert.equal(third.status, 200);
    assert.equal(await third.text(), "<html>not json</html>");

    const started = Date.now();
    const fourth = await getJson("/breed/pug/images/random/2");
    assert.ok(Date.now() - started >= 140, "the slow reply should take about 150 ms");
    assert.equal(fourth.body.message.length, 2);

    const fifth = await getJson("/breed/pug/images/random/2");
    assert.equal(fifth.status, 200);
    assert.equal(api.requests - before, 5);
  });

  test("when faults are queued, the breed list endpoint is not affected", async () => {
    api.failNext("http500");

    const { status } = await getJson("/breeds/list/all");

    assert.equal(status, 200);
    api.clearFaults();
  });

  test("when a request hangs, close() still finishes promptly", async () => {
    const other = await startFakeDogApi({ port: 0 });
    other.failNext("hang");
    const pending = fetch(`${other.url}/breed/pug/images/random/2`).catch((err: unknown) => err);
    while (other.requests === 0) await new Promise((r) => setTimeout(r, 10));

    const started = Date.now();
    await other.close();

    assert.ok(Date.now() - started < 1000);
    assert.ok((await pending) instanceof Error);
  });

  test("when a drip is queued, it sends a JSON 200 a byte at a time and stops when the client hangs up", async () => {
    const lone = await startFakeDogApi({ port: 0 });
    lone.failNext("drip"); // a byte every 200 ms
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${lone.url}/breed/pug/images/random/2`, { agent: false }, resolve).on("error", reject);
    });
    let received = 0;
    res.on("data", (chunk: Buffer) => (received += chunk.length));
    res.on("error", () => {});

    await new Promise((resolve) => setTimeout(resolve, 700));

    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["content-type"], "application/json");
    assert.ok(Number(res.headers["content-length"]) > 100);
    assert.ok(received >= 2 && received <= 5, `received ${received} bytes in 0.7 s`);
    res.destroy();
    for (const until = Date.now() + 2000; lone.openSockets > 0 && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(lone.openSockets, 0);
    await lone.close();
  });

  test("when a fast drip is queued, the bytes add up to a valid success answer", async () => {
    api.failNext("drip", 1, { delayMs: 1 });

    const { status, body } = await getJson("/breed/pug/images/random/2");

    assert.equal(status, 200);
    assert.equal(body.status, "success");
    assert.equal(body.message.length, 4);
  });

  test("when a huge answer is queued, it sends a chunked 2 MiB success answer without Content-Length", async () => {
    api.failNext("huge");

    const res = await fetch(`${api.url}/breed/pug/images/random/2`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();

    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("content-length"), null);
    assert.equal(res.headers.get("transfer-encoding"), "chunked");
    assert.ok(text.length >= 2 * 1024 * 1024 && text.length < 2 * 1024 * 1024 + 200, `${text.length} bytes`);
    const body = JSON.parse(text);
    assert.equal(body.status, "success");
    assert.match(body.message[0], /\/images\/breeds\/pug\//);
  });

  test("when a fault rate is set with a seed, the same seed gives the same sequence of faults", async () => {
    async function statuses(seed: number): Promise<number[]> {
      const one = await startFakeDogApi({ port: 0 });
      one.setFaultRate({ http500: 0.5 }, seed);
      const seen: number[] = [];
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`${one.url}/breed/pug/images/random/1`);
        await res.arrayBuffer();
        seen.push(res.status);
      }
      await one.close();
      return seen;
    }

    const first = await statuses(42);

    assert.deepEqual(await statuses(42), first);
    assert.ok(first.includes(500) && first.includes(200));
  });

  test("when many requests arrive at once, all of them are answered", async () => {
    const replies = await Promise.all(
      Array.from({ length: 200 }, () => getJson("/breed/retriever/golden/images/random/5")),
    );

    assert.ok(replies.every((r) => r.status === 200 && r.body.message.length === 5));
  });

  test("when a fixed latency is set, image lists answer that late and other endpoints at once", async () => {
    const slow = await startFakeDogApi({ port: 0, latencyMs: 1500 });
    try {
      const timed = async (path: string) => {
        const started = performance.now();
        const res = await fetch(`${slow.url}${path}`, { signal: AbortSignal.timeout(5000) });
        return { status: res.status, body: await res.json(), ms: performance.now() - started };
      };
      const list = await timed("/breed/hound/images/random/3");
      const breeds = await timed("/breeds/list/all");

      assert.equal(list.status, 200);
      assert.equal(list.body.message.length, 3);
      assert.ok(list.ms >= 1400, `image list took ${list.ms} ms`);
      // Not a bound on how fast a busy machine answers: only that it was not held like the image lists.
      assert.ok(breeds.ms < 1400, `breed list took ${breeds.ms} ms`);
    } finally {
      await slow.close();
    }
  });
});
