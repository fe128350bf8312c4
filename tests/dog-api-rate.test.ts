// DOG_API_MAX_RPS: the dog.ceo client's ceiling on requests a second, seen from the stand-in's side.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startFakeDogApi } from "../dev/fake-dog-api.ts";
import type { FakeDogApi } from "../dev/fake-dog-api.ts";
import { ConfigError, loadConfig } from "../lib/platform/config.ts";
import { createDogApi, DogApiError } from "../lib/dogs/dogApi.ts";
import type { DogApi, DogApiOptions } from "../lib/dogs/dogApi.ts";

let fake: FakeDogApi;
const clients: DogApi[] = [];

before(async () => {
  fake = await startFakeDogApi({ port: 0 });
});

after(async () => {
  await fake.close();
  await Promise.all(clients.map((c) => c.close()));
});

function client(opts: Omit<DogApiOptions, "baseUrl">): DogApi {
  const made = createDogApi({ baseUrl: fake.url, ...opts });
  clients.push(made);
  return made;
}

/** The stand-in's arrival times (ms) of the requests made by `act`. */
async function arrivalsDuring<T>(act: () => Promise<T>): Promise<{ result: T; times: number[]; paths: string[] }> {
  const from = fake.arrivals.length;
  const result = await act();
  const seen = fake.arrivals.slice(from);
  return { result, times: seen.map((a) => a.at), paths: seen.map((a) => a.path) };
}

const imagesPath = (count: number) => `/api/breed/pug/images/random/${count}`;

describe("the dog.ceo client's ceiling on requests a second", () => {
  test("when 25 calls come at once with maxRps 10, then all succeed, spread over at least ~1.5 s, never more than burst + rate x time in any stretch", async () => {
    const dog = client({ maxRps: 10 });
    // Connections opened first (and the bucket left to fill again): opening ten sockets at once
    // delays the burst's arrivals on a busy machine, which would bunch them with the next ones.
    await Promise.all(Array.from({ length: 10 }, () => dog.randomImages("pug", undefined, 1)));
    await new Promise((resolve) => setTimeout(resolve, 1100));

    const { result, times } = await arrivalsDuring(() =>
      Promise.all(Array.from({ length: 25 }, () => dog.randomImages("pug", undefined, 1))),
    );

    assert.equal(result.length, 25);
    assert.ok(result.every((links) => links.length === 1));
    assert.equal(times.length, 25);
    times.sort((a, b) => a - b);
    // 10 at once (the burst), then the other 15 one every 100 ms.
    assert.ok(times.at(-1)! - times[0]! >= 1400, `arrivals spanned only ${times.at(-1)! - times[0]!} ms`);
    // A request's trip to the stand-in varies (more on a busy machine); allow 100 ms of that in each stretch.
    for (let i = 0; i < times.length; i++) {
      for (let j = i; j < times.length; j++) {
        const elapsed = times[j]! - times[i]!;
        const allowed = 10 + (10 * (elapsed + 100)) / 1000;
        assert.ok(
          j - i + 1 <= allowed,
          `${j - i + 1} requests arrived within ${elapsed} ms (at most ${allowed.toFixed(1)} allowed)`,
        );
      }
    }
  });

  test("when calls queue for their turn, then they are served first come, first served", async () => {
    const dog = client({ maxRps: 10 });
    const finished: number[] = [];

    // Call i asks for i + 1 photos, so the stand-in can tell the calls apart too.
    const { paths } = await arrivalsDuring(() =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) => dog.randomImages("pug", undefined, i + 1).then(() => finished.push(i))),
      ),
    );

    // The first 10 (the burst) go out together and may finish in any order; the rest leave 100 ms apart.
    assert.deepEqual(
      finished.slice(0, 10).sort((a, b) => a - b),
      [...Array(10).keys()],
    );
    assert.deepEqual(
      finished.slice(10),
      [...Array(10).keys()].map((i) => i + 10),
    );
    assert.deepEqual(
      paths.slice(10),
      [...Array(10).keys()].map((i) => imagesPath(i + 11)),
    );
  });

  test("when reruns and people's calls wait for their turn, then every person's call goes before any rerun's", async () => {
    const dog = client({ maxRps: 10 });
    // In one go: the burst (3 photos each) spends every token, then 5 reruns (2 photos) ask, then 5 people (1 photo).
    const { paths } = await arrivalsDuring(() =>
      Promise.all([
        ...Array.from({ length: 10 }, () => dog.randomImages("pug", undefined, 3)),
        ...Array.from({ length: 5 }, () => dog.randomImages("pug", undefined, 2, { rerun: true })),
        ...Array.from({ length: 5 }, () => dog.randomImages("pug", undefined, 1)),
      ]),
    );
    assert.deepEqual(paths.slice(10), [...Array(5).fill(imagesPath(1)), ...Array(5).fill(imagesPath(2))]);
  });

  test("when calls wait for their turn longer than the timeout, then none fails: the timeout covers only the HTTP call", async () => {
    // Timeouts a busy machine's local calls stay well within, and turns far longer than them.
    const dog = client({
      maxRps: 2,
      connectTimeoutMs: 1000,
      headersTimeoutMs: 1000,
      bodyTimeoutMs: 1000,
      totalTimeoutMs: 1000,
    });
    const started = performance.now();

    const results = await Promise.allSettled(Array.from({ length: 10 }, () => dog.randomImages("pug", undefined, 2)));

    assert.deepEqual(
      results.map((r) => r.status),
      Array(10).fill("fulfilled"),
    );
    // The last one waited about 4 s for its turn (2 at once, then one every 500 ms).
    assert.ok(performance.now() - started >= 3500, `took only ${performance.now() - started} ms`);
  });

  for (const maxRps of [0, undefined]) {
    test(`when maxRps is ${maxRps}, then calls are not held: 100 at once finish sooner than any ceiling's pace would let them`, async () => {
      const dog = client({ maxRps });
      const started = performance.now();

      const results = await Promise.all(Array.from({ length: 100 }, () => dog.randomImages("pug", undefined, 1)));

      assert.equal(results.length, 100);
      // The default ceiling (20 a second, a burst of 20) would spread them over 4 s: a margin
      // a busy machine does not eat, where the old 800 ms for 50 calls was.
      const took = performance.now() - started;
      assert.ok(took < 3000, `100 calls took ${took} ms`);
    });
  }

  test("when dog.ceo answers 429 to a call that waited its turn, then the error still carries Retry-After", async () => {
    const dog = client({ maxRps: 1 });
    await dog.randomImages("pug", undefined, 1); // spends the burst: the next token is 1 s away
    fake.failNext("http429");
    const started = performance.now();

    const err = await dog.randomImages("pug", undefined, 1).then(
      () => assert.fail("expected the call to fail"),
      (e: unknown) => e,
    );

    assert.ok(err instanceof DogApiError, String(err));
    assert.equal(err.kind, "transient");
    assert.equal(err.status, 429);
    assert.equal(err.retryAfterMs, 1000);
    assert.ok(performance.now() - started >= 100, "the call should have waited for a token");
  });

  test("when the client closes while calls wait for their turn, then they fail at once as transient instead of holding the close up", async () => {
    const dog = createDogApi({ baseUrl: fake.url, maxRps: 0.2 }); // a turn every 5 s
    const calls = Array.from({ length: 3 }, () =>
      dog.randomImages("pug", undefined, 1).then(
        () => "ok",
        (e: unknown) => e,
      ),
    );
    await calls[0];
    const started = performance.now();

    await dog.close();
    const [, second, third] = await Promise.all(calls);

    for (const err of [second, third]) {
      assert.ok(err instanceof DogApiError, String(err));
      assert.equal(err.kind, "transient");
      assert.match(err.message, /closed before this call's turn/);
    }
    // The next turn was 5 s away: failing well before it means they did not wait for it.
    assert.ok(performance.now() - started < 4000, "the waiting calls should not have waited for their turns");
  });
});

describe("DOG_API_MAX_RPS", () => {
  test("when it is not set, then one process starts at most 20 dog.ceo requests a second", () => {
    assert.equal(loadConfig({}).dogApiMaxRps, 20);
  });

  test("when it is 0, then there is no ceiling", () => {
    assert.equal(loadConfig({ DOG_API_MAX_RPS: "0" }).dogApiMaxRps, 0);
  });

  for (const raw of ["-1", "abc", "2.5", "10001"]) {
    test(`when it is '${raw}', then the config stops with an error naming DOG_API_MAX_RPS`, () => {
      assert.throws(
        () => loadConfig({ DOG_API_MAX_RPS: raw }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.variable, "DOG_API_MAX_RPS");
          assert.ok(err.message.startsWith("DOG_API_MAX_RPS "), err.message);
          return true;
        },
      );
    });
  }
});
