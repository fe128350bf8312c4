import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { startFakeDogApi } from "../dev/fake-dog-api.ts";
import type { FakeDogApi } from "../dev/fake-dog-api.ts";
import { createDogApi, DogApiError } from "../lib/dogs/dogApi.ts";
import type { DogApi } from "../lib/dogs/dogApi.ts";

let fake: FakeDogApi;
let client: DogApi;

before(async () => {
  fake = await startFakeDogApi({ port: 0 });
  // undici checks idle timeouts on a ~0.5 s tick, so the 300 ms ones fire within about 1 s; the total deadline stays
  // clear of that.
  client = createDogApi({
    baseUrl: fake.url,
    headersTimeoutMs: 300,
    bodyTimeoutMs: 300,
    connectTimeoutMs: 500,
    totalTimeoutMs: 2000,
  });
});

afterEach(() => fake.clearFaults());

after(async () => {
  await fake.close(); // first: destroys hanging sockets, so the client's close() has nothing to wait for
  await client.close();
});

/** Awaits a call expected to fail and returns its DogApiError. */
async function failure(call: Promise<unknown>): Promise<DogApiError> {
  const err = await call.then(
    () => assert.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DogApiError, `expected a DogApiError, got ${String(err)}`);
  return err;
}

describe("the dog.ceo client", () => {
  test("when the breeds are listed, it returns the map of breed to sub-breeds", async () => {
    const breeds = await client.listBreeds();

    assert.deepEqual(breeds.bulldog, ["boston", "english", "french"]);
    assert.deepEqual(breeds.kelpie, []);
    assert.equal(Object.keys(breeds).length, 107);
  });

  test("when a call is abandoned by its signal (a stopped task), it ends at once as stopped, not as a timeout", async () => {
    fake.failNext("hang");
    const stop = new AbortController();
    const call = client.randomImages("pug", undefined, 2, { signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort(new Error("stopped by hand"));
    const err = await failure(call);
    assert.equal(err.kind, "stopped");
    assert.match(err.message, /abandoned: the task was stopped/);
    // An already abandoned call never goes out.
    assert.equal((await failure(client.randomImages("pug", undefined, 2, { signal: stop.signal }))).kind, "stopped");
  });

  test("when images of a breed are asked for, it returns that many links", async () => {
    const images = await client.randomImages("labrador", undefined, 4);

    assert.equal(images.length, 4);
    for (const url of images) assert.ok(url.startsWith(`${fake.origin}/images/breeds/labrador/`));
  });

  test("when images of a sub-breed are asked for, it returns links of that sub-breed", async () => {
    const images = await client.randomImages("poodle", "toy", 3);

    assert.equal(images.length, 3);
    for (const url of images) assert.ok(url.startsWith(`${fake.origin}/images/breeds/poodle-toy/`));
  });

  test("when the breed is unknown, the client raises not_found with dog.ceo's message", async () => {
    const err = await failure(client.randomImages("unicorn", undefined, 2));

    assert.equal(err.kind, "not_found");
    assert.equal(err.status, 404);
    assert.equal(err.message, "Breed not found (main breed does not exist)");
  });

  test("when the sub-breed is unknown, the client raises not_found with dog.ceo's message", async () => {
    const err = await failure(client.randomImages("hound", "unicorn", 2));

    assert.equal(err.kind, "not_found");
    assert.equal(err.message, "Breed not found (sub breed does not exist)");
  });

  test("when the breed name holds URL characters, they are encoded and dog.ceo answers not_found", async () => {
    const err = await failure(client.randomImages("../breeds/list", undefined, 2));

    assert.equal(err.kind, "not_found");
    // What reached the stand-in: one encoded segment, not a path that climbs out of /breed/.
    assert.equal(fake.arrivals.at(-1)?.path, "/api/breed/..%2Fbreeds%2Flist/images/random/2");
  });

  for (const [fault, status, text] of [
    ["http500", 500, "dog.ceo answered 500 Internal Server Error"],
    ["http503", 503, "dog.ceo answered 503 Service Unavailable"],
  ] as const) {
    test(`when dog.ceo answers ${status}, the client raises a transient error saying so`, async () => {
      fake.failNext(fault);

      const err = await failure(client.randomImages("pug", undefined, 2));

      assert.equal(err.kind, "transient");
      assert.equal(err.status, status);
      assert.equal(err.message, text);
    });
  }

  test("when dog.ceo answers 429, the client raises a transient error with retryAfterMs from Retry-After", async () => {
    fake.failNext("http429");

    const err = await failure(client.randomImages("pug", undefined, 2));

    assert.equal(err.kind, "transient");
    assert.equal(err.status, 429);
    assert.equal(err.retryAfterMs, 1000);
  });

  test("when dog.ceo does not answer, the client raises a transient headers timeout within the configured time", async () => {
    fake.failNext("hang");
    const started = Date.now();

    const err = await failure(client.randomImages("pug", undefined, 2));

    assert.equal(err.kind, "transient");
    assert.equal(err.message, "dog.ceo did not answer within 0.3 s (headers timeout)");
    assert.ok(Date.now() - started < 2500);
  });

  test("when dog.ceo answers slower than the headers timeout, the client raises a transient timeout", async () => {
    // undici checks headers/body timeouts on a ~0.5 s tick, so a 300 ms timeout fires after 0.5 to 1 s.
    fake.failNext("slow", 1, { delayMs: 2500 });

    const err = await failure(client.randomImages("pug", undefined, 2));

    assert.equal(err.kind, "transient");
    assert.match(err.message, /headers timeout/);
  });

  test("when dog.ceo answers a little slowly but within the timeout, the client returns the links", async () => {
    fake.failNext("slow", 1, { delayMs: 100 });

    assert.equal((await client.randomImages("pug", undefined, 2)).length, 2);
  });

  test("when dog.ceo answers HTML instead of JSON, the client raises a transient error", async () => {
    fake.failNext("badJson");

    const err = await failure(client.randomImages("pug", undefined, 2));

    assert.equal(err.kind, "transient");
    assert.equal(err.message, "dog.ceo sent a reply that is not JSON (200 OK, text/html)");
  });

  test("when the answer is cut off mid-body, the client raises a transient error", async () => {
    fake.failNext("truncated");

    const err = await failure(client.randomImages("pug", undefined, 2));

    assert.equal(err.kind, "transient");
    assert.equal(err.message, "dog.ceo closed the connection before its answer was complete");
  });

  test("when dog.ceo drip-feeds its answer, the client gives up at totalTimeoutMs and closes the connection", async () => {
    // A byte every 200 ms: the 5 s idle timeouts never fire, only the total deadline ends the call.
    const lone = await startFakeDogApi({ port: 0 });
    const patient = createDogApi({ baseUrl: lone.url, totalTimeoutMs: 800 });
    lone.failNext("drip");
    const started = Date.now();

    const err = await failure(patient.randomImages("pug", undefined, 2));

    const elapsed = Date.now() - started;
    assert.equal(err.kind, "transient");
    assert.equal(err.message, "dog.ceo did not finish answering within 0.8 s (total timeout)");
    assert.ok(elapsed >= 750 && elapsed < 2500, `gave up after ${elapsed} ms`);
    await waitFor(() => lone.openSockets === 0, "the dripping connection to be closed");
    assert.equal((await patient.randomImages("pug", undefined, 2)).length, 2);
    await patient.close();
    await lone.close();
  });

  test("when the answer is larger than maxBodyBytes (no Content-Length), the client stops reading and closes the connection", async () => {
    const lone = await startFakeDogApi({ port: 0 });
    const reader = createDogApi({ baseUrl: lone.url });
    lone.failNext("huge");

    const err = await failure(reader.randomImages("pug", undefined, 2));

    assert.equal(err.kind, "transient");
    assert.equal(err.message, "dog.ceo's answer is larger than 1 MiB");
    await waitFor(() => lone.openSockets === 0, "the huge answer's connection to be closed");
    assert.equal((await reader.randomImages("pug", undefined, 2)).length, 2);
    await reader.close();
    await lone.close();
  });

  test("when the Content-Length is above maxBodyBytes, the client refuses the answer without reading it", async () => {
    const strict = createDogApi({ baseUrl: fake.url, maxBodyBytes: 1000 });

    const err = await failure(strict.listBreeds()); // about 4 KiB, sent with a Content-Length

    assert.equal(err.kind, "transient");
    assert.equal(err.message, "dog.ceo's answer is larger than 1000 bytes");
    assert.equal((await strict.randomImages("pug", undefined, 2)).length, 2); // a small answer still passes
    await strict.close();
  });

  test("when drip and huge answers have been abandoned, the same client answers normally again", async () => {
    fake.failNext("drip", 1, { delayMs: 50 });
    fake.failNext("huge");
    const dripping = createDogApi({ baseUrl: fake.url, totalTimeoutMs: 300 });
    await failure(dripping.randomImages("pug", undefined, 2));
    await dripping.close();
    await failure(client.randomImages("pug", undefined, 2));

    const [images, breeds] = await Promise.all([client.randomImages("pug", undefined, 3), client.listBreeds()]);

    assert.equal(images.length, 3);
    assert.equal(Object.keys(breeds).length, 107);
  });

  test("when a fault has passed, the same client succeeds again", async () => {
    fake.failNext("http500");
    await failure(client.randomImages("pug", undefined, 2));

    assert.equal((await client.randomImages("pug", undefined, 2)).length, 2);
  });

  test("when the count is not a whole number of at least 1, the client raises invalid without calling dog.ceo", async () => {
    const before = fake.requests;

    const err = await failure(client.randomImages("pug", undefined, 0));

    assert.equal(err.kind, "invalid");
    assert.equal(fake.requests, before);
  });

  test("when nothing listens at the address, the client raises a transient connection error", async () => {
    const port = await freePort();
    const refused = createDogApi({ baseUrl: `http://127.0.0.1:${port}/api`, connectTimeoutMs: 500 });

    const err = await failure(refused.listBreeds());
    await refused.close();

    assert.equal(err.kind, "transient");
    assert.equal(err.message, `could not connect to dog.ceo at 127.0.0.1:${port}: ECONNREFUSED`);
  });
});

/** Polls a condition every 10 ms for up to 2 s. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (const until = Date.now() + 2000; !condition();) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A port that was free a moment ago (nothing listens on it any more). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
