// Plain functions on their own, no broker or database: input validation, configuration,
// the job message, retry backoff and the photo-link filter.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { BreedCatalog } from "../lib/dogs/breeds.ts";
import { cachedFor } from "../lib/platform/cachedFor.ts";
import { amqpNodeUrls, ConfigError, loadConfig, maskUrl, projectRoot } from "../lib/platform/config.ts";
import { ValidationError } from "../lib/platform/errors.ts";
import { createLogger } from "../lib/platform/logger.ts";
import { parseTaskInput } from "../lib/lifecycle/validation.ts";
import { InvalidMessageError, parseJobMessage } from "../tasks/messages.ts";
import { backoffDelay } from "../tasks/retryPolicy.ts";
import { keepTrustedLinks } from "../tasks/run.ts";

const catalog = new BreedCatalog({ hound: ["afghan", "basset"], pug: [], bulldog: ["french"] });
const RANGE = "The limit must be a whole number from 1 to 50.";
const NO_LIMIT = "Give a limit: a whole number from 1 to 50.";
const SHAPE = 'A breed is lower-case letters only, like "hound" or "hound/afghan".';

/** The ValidationError parseTaskInput throws for raw, or a failure if it accepts it. */
function rejection(raw: unknown, from: "form" | "json"): ValidationError {
  try {
    const accepted = parseTaskInput(raw, catalog, from);
    assert.fail(`accepted ${JSON.stringify(raw)} as ${JSON.stringify(accepted)}`);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    assert.equal(err.status, 400);
    assert.equal(err.code, "invalid_input");
    return err;
  }
}

describe("parseTaskInput", () => {
  test("when the form posts a breed, it gives that breed and the limit as a number", () => {
    assert.deepEqual(parseTaskInput({ breed: "hound", limit: "5" }, catalog, "form"), { breed: "hound", limit: 5 });
  });

  test("when the form posts breed/sub-breed, it splits them", () => {
    assert.deepEqual(parseTaskInput({ breed: "hound/afghan", limit: "50" }, catalog, "form"), {
      breed: "hound",
      subBreed: "afghan",
      limit: 50,
    });
  });

  test("when the API posts breed and subBreed separately, it takes both", () => {
    assert.deepEqual(parseTaskInput({ breed: "hound", subBreed: "afghan", limit: 1 }, catalog, "json"), {
      breed: "hound",
      subBreed: "afghan",
      limit: 1,
    });
    assert.deepEqual(parseTaskInput({ breed: "hound/afghan", limit: 3 }, catalog, "json"), {
      breed: "hound",
      subBreed: "afghan",
      limit: 3,
    });
  });

  const badLimits: [string, unknown, "form" | "json", string][] = [
    ["0", "0", "form", RANGE],
    ["51", "51", "form", RANGE],
    ["-1", "-1", "form", RANGE],
    ["abc", "abc", "form", RANGE],
    ["1.5", "1.5", "form", RANGE],
    ["empty", "", "form", NO_LIMIT],
    ["10^20", "100000000000000000000", "form", RANGE],
    ["missing", undefined, "form", NO_LIMIT],
    ["0", 0, "json", RANGE],
    ["51", 51, "json", RANGE],
    ["-1", -1, "json", RANGE],
    ["1.5", 1.5, "json", RANGE],
    ['the string "5"', "5", "json", RANGE],
    ["1e20", 1e20, "json", RANGE],
    ["null", null, "json", NO_LIMIT],
  ];
  for (const [name, limit, from, message] of badLimits) {
    test(`when the ${from} limit is ${name}, the limit field says "${message}"`, () => {
      const err = rejection({ breed: "hound", limit }, from);
      assert.deepEqual(err.fields, { limit: message });
      assert.equal(err.field, "limit");
      assert.equal(err.message, message);
    });
  }

  const badBreeds: [string, unknown, string][] = [
    ["nope", "nope", 'dog.ceo has no breed "nope".'],
    ["../x", "../x", SHAPE],
    ["hound/nope", "hound/nope", 'dog.ceo has no sub-breed "nope" of "hound".'],
    ["a script tag", "<script>alert(1)</script>", SHAPE],
    ["missing", undefined, "Pick a breed."],
    ["empty", "", "Pick a breed."],
    ["a number", 5, "The breed must be text."],
    ["constructor (not an own breed)", "constructor", 'dog.ceo has no breed "constructor".'],
    ["hound/afghan/x", "hound/afghan/x", SHAPE],
  ];
  for (const from of ["form", "json"] as const) {
    for (const [name, breed, message] of badBreeds) {
      test(`when the ${from} breed is ${name}, the breed field says "${message}"`, () => {
        const err = rejection({ breed, limit: from === "form" ? "5" : 5 }, from);
        assert.deepEqual(err.fields, { breed: message });
        assert.equal(err.field, "breed");
      });
    }
  }

  test("when the sub-breed is given twice (in breed and subBreed), it says so", () => {
    const err = rejection({ breed: "hound/afghan", subBreed: "afghan", limit: 5 }, "json");
    assert.match(err.fields.breed!, /either in the breed or on its own/);
  });

  test("when the sub-breed is not text, it says so", () => {
    assert.deepEqual(rejection({ breed: "hound", subBreed: ["afghan"], limit: 5 }, "json").fields, {
      breed: "The sub-breed must be text.",
    });
  });

  test("when both fields are bad, both are reported and the breed comes first", () => {
    const err = rejection({}, "form");
    assert.deepEqual(err.fields, { breed: "Pick a breed.", limit: NO_LIMIT });
    assert.equal(err.field, "breed");
  });

  test("when the body is not an object, it is treated as empty", () => {
    for (const raw of [null, undefined, "hound", 5, ["hound", 5]]) {
      assert.deepEqual(rejection(raw, "json").fields, { breed: "Pick a breed.", limit: NO_LIMIT });
    }
  });
});

describe("loadConfig", () => {
  test("when nothing is set, the defaults are used", () => {
    const config = loadConfig({});
    assert.equal(config.env, "development");
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.port, 3000);
    assert.equal(config.databaseUrl, `file:${projectRoot}/gendog.db`);
    assert.equal(
      loadConfig({ DATABASE_URL: "postgresql://u:p@db:5432/gendog" }).databaseUrl,
      "postgresql://u:p@db:5432/gendog",
    );
    assert.equal(config.amqpUrl, "amqp://guest:guest@localhost:5672");
    assert.equal(config.queueName, "gendog.jobs");
    assert.equal(config.dogApiUrl, "https://dog.ceo/api");
    assert.deepEqual(config.imageOrigins, ["https://images.dog.ceo", "https://dog.ceo"]);
    assert.equal(config.workerConcurrency, 128);
    assert.equal(config.recoveryGraceMs, 30_000);
    assert.deepEqual(config.retry, { maxAttempts: 5, baseMs: 1000, maxMs: 60_000 });
    assert.equal(config.rateLimitPerMinute, 30);
    assert.equal(config.logLevel, "info");
    assert.match(config.csrfSecret, /^[0-9a-f]{64}$/);
  });

  test("when the dog API is the stand-in, its origin is trusted for images", () => {
    const config = loadConfig({ DOG_API_URL: "http://127.0.0.1:4000/api/" });
    assert.equal(config.dogApiUrl, "http://127.0.0.1:4000/api");
    assert.deepEqual(config.imageOrigins, ["https://images.dog.ceo", "http://127.0.0.1:4000"]);
  });

  const bad: [string, Record<string, string>][] = [
    ["PORT", { PORT: "abc" }],
    ["PORT", { PORT: "70000" }],
    ["WORKER_CONCURRENCY", { WORKER_CONCURRENCY: "0" }],
    ["AMQP_URL", { AMQP_URL: "http://x" }],
    ["AMQP_URL", { AMQP_URL: "not a url" }],
    ["DOG_API_URL", { DOG_API_URL: "ftp://x" }],
    ["RETRY_MAX_MS", { RETRY_BASE_MS: "5000", RETRY_MAX_MS: "4999" }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
    ["QUEUE_NAME", { QUEUE_NAME: "my jobs" }],
    ["CSRF_SECRET", { CSRF_SECRET: "too-short" }],
    ["DATABASE_URL", { DATABASE_URL: "mysql://user:pw@db:3306/gendog" }],
    ["DATABASE_URL", { DATABASE_URL: "postgresql://user:pw@db:5432" }],
    ["NODE_ENV", { NODE_ENV: "staging" }],
    ["IMAGE_ORIGINS", { IMAGE_ORIGINS: "http://images.dog.ceo" }],
  ];
  for (const [variable, env] of bad) {
    test(`when ${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}, it stops with an error naming ${variable}`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.variable, variable);
          assert.ok(err.message.startsWith(`${variable} `), err.message);
          return true;
        },
      );
    });
  }

  test("when the database URL is rejected, the message shows what was given but not its password", () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: "mysql://gendog:hunter2@db:3306/gendog" }),
      (err: Error) => {
        assert.match(err.message, /^DATABASE_URL must be a SQLite file URL.*mysql:\/\/gendog:\*\*\*@db:3306\/gendog/);
        assert.ok(!err.message.includes("hunter2"), err.message);
        return true;
      },
    );
    assert.throws(
      () => loadConfig({ DATABASE_URL: "postgresql://gendog:hunter2@db:5432" }),
      (err: Error) => {
        assert.match(
          err.message,
          /^DATABASE_URL must name a host and a database.*postgresql:\/\/gendog:\*\*\*@db:5432/,
        );
        assert.ok(!err.message.includes("hunter2"), err.message);
        return true;
      },
    );
    assert.throws(() => loadConfig({ DATABASE_URL: "./gendog.db" }), /got '\.\/gendog\.db'/);
  });
});

describe("AMQP_URL as a list of nodes", () => {
  test("when it lists several nodes, they are kept in order, spaces trimmed", () => {
    const config = loadConfig({
      AMQP_URL: " amqp://u:p@rabbit-1:5672 ,amqp://u:p@rabbit-2:5672, amqps://u:p@rabbit-3 ",
    });
    assert.equal(config.amqpUrl, "amqp://u:p@rabbit-1:5672,amqp://u:p@rabbit-2:5672,amqps://u:p@rabbit-3");
    assert.deepEqual(amqpNodeUrls(config.amqpUrl), [
      "amqp://u:p@rabbit-1:5672",
      "amqp://u:p@rabbit-2:5672",
      "amqps://u:p@rabbit-3",
    ]);
  });

  const badLists: [string, string, RegExp][] = [
    [
      "an empty entry",
      "amqp://gendog:hunter2@rabbit-1:5672,,amqp://gendog:hunter2@rabbit-3:5672",
      /^AMQP_URL entry 2 of 3 is empty/,
    ],
    ["a trailing comma", "amqp://gendog:hunter2@rabbit-1:5672,", /^AMQP_URL entry 2 of 2 is empty/],
    [
      "an entry that is not a URL",
      "amqp://gendog:hunter2@rabbit-1:5672,amqp://gendog:hunter2@rabbit-2:56x2",
      /^AMQP_URL entry 2 of 2 'amqp:\/\/gendog:\*\*\*@rabbit-2:56x2' is not a URL/,
    ],
    [
      "an entry of another protocol",
      "amqp://gendog:hunter2@rabbit-1:5672,http://gendog:hunter2@rabbit-2",
      /^AMQP_URL entry 2 of 2 'http:\/\/gendog:\*\*\*@rabbit-2' must start with amqp:\/\//,
    ],
    [
      "the same node twice",
      "amqp://gendog:hunter2@rabbit-1:5672,amqp://other:hunter2@rabbit-1:5672",
      /^AMQP_URL entry 2 of 2 'amqp:\/\/other:\*\*\*@rabbit-1:5672' names the same node as entry 1/,
    ],
  ];
  for (const [what, raw, message] of badLists) {
    test(`when the list has ${what}, it stops naming AMQP_URL and the entry, the password hidden`, () => {
      assert.throws(
        () => loadConfig({ AMQP_URL: raw }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.variable, "AMQP_URL");
          assert.match(err.message, message);
          assert.ok(!err.message.includes("hunter2"), err.message);
          return true;
        },
      );
    });
  }
});

describe("maskUrl", () => {
  test("when the broker URL has a password, it is hidden and the rest kept", () => {
    const masked = maskUrl("amqp://gendog:s3cret-Pa55@rabbit.internal:5672/vhost");
    assert.ok(!masked.includes("s3cret-Pa55"), masked);
    assert.match(masked, /^amqp:\/\/gendog:\*\*\*@rabbit\.internal:5672\/vhost$/);
  });

  test("when the URL has no password, it is shown as is", () => {
    assert.equal(maskUrl("amqp://rabbit:5672"), "amqp://rabbit:5672");
  });

  test("when the URL cannot be parsed, nothing of it is shown", () => {
    assert.equal(maskUrl("amqp://user:pw@[bad"), "(unparseable URL)");
  });
});

describe("parseJobMessage", () => {
  const taskId = "0f8fad5b-d9cb-469f-a165-70867728950e";

  test("when the message is valid, it gives the job", () => {
    assert.deepEqual(parseJobMessage(Buffer.from(JSON.stringify({ taskId, breed: "hound", limit: 5 }))), {
      taskId,
      breed: "hound",
      limit: 5,
    });
    assert.deepEqual(parseJobMessage(JSON.stringify({ taskId, breed: "hound", subBreed: "afghan", limit: 50 })), {
      taskId,
      breed: "hound",
      subBreed: "afghan",
      limit: 50,
    });
  });

  const bad: [string, string, RegExp][] = [
    ["not JSON", "{taskId:", /not JSON/],
    ["a JSON array", JSON.stringify([{ taskId, breed: "hound", limit: 5 }]), /not a JSON object/],
    ["JSON null", "null", /not a JSON object/],
    ["a bad uuid", JSON.stringify({ taskId: "not-a-uuid", breed: "hound", limit: 5 }), /taskId/],
    ["limit 0", JSON.stringify({ taskId, breed: "hound", limit: 0 }), /limit/],
    ["limit 51", JSON.stringify({ taskId, breed: "hound", limit: 51 }), /limit/],
    ["limit 1.5", JSON.stringify({ taskId, breed: "hound", limit: 1.5 }), /limit/],
    ['limit "5"', JSON.stringify({ taskId, breed: "hound", limit: "5" }), /limit/],
    ['breed "../x"', JSON.stringify({ taskId, breed: "../x", limit: 5 }), /breed/],
    ['subBreed "../x"', JSON.stringify({ taskId, breed: "hound", subBreed: "../x", limit: 5 }), /subBreed/],
  ];
  for (const [name, content, reason] of bad) {
    test(`when the message is ${name}, it is rejected as invalid`, () => {
      assert.throws(
        () => parseJobMessage(content),
        (err: unknown) => err instanceof InvalidMessageError && reason.test(err.message),
      );
    });
  }
});

describe("backoffDelay", () => {
  const policy = { maxAttempts: 10, baseMs: 100, maxMs: 1000 };
  const low = () => 0;
  const high = () => 0.999999;

  test("when attempts go up, the delay doubles each time until the cap", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(policy, a, undefined, high)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(policy, a, undefined, low)),
      [50, 100, 200, 400, 500, 500],
    );
  });

  test("when jitter is applied, the delay stays within half to all of the exponential delay", () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const full = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
      for (const r of [0, 0.1, 0.5, 0.9, 0.999999]) {
        const delay = backoffDelay(policy, attempt, undefined, () => r);
        assert.ok(
          delay >= full / 2 && delay <= full,
          `attempt ${attempt}, random ${r}: ${delay} not in [${full / 2}, ${full}]`,
        );
      }
    }
  });

  test("when the attempt number is huge, the delay is never above the maximum", () => {
    for (const attempt of [10, 50, 1000, 1e6])
      assert.ok(backoffDelay(policy, attempt, undefined, high) <= policy.maxMs);
  });

  test("when dog.ceo asks to retry after a while, that wait is honoured up to the maximum", () => {
    assert.equal(backoffDelay(policy, 1, 700, low), 700);
    assert.equal(backoffDelay(policy, 1, 10, low), 50, "a shorter Retry-After does not shorten the backoff");
    assert.equal(backoffDelay(policy, 1, 5000, low), 1000, "a longer Retry-After is capped");
  });
});

describe("keepTrustedLinks", () => {
  const log = createLogger("silent", "test");
  const standIn = "http://127.0.0.1:4321";
  const origins = ["https://images.dog.ceo", standIn];

  test("when links point at dog.ceo's https image host or the stand-in, they are kept in order", () => {
    const links = ["https://images.dog.ceo/breeds/hound-afghan/n1.jpg", `${standIn}/images/breeds/pug/a.svg`];
    assert.deepEqual(keepTrustedLinks(links, origins, log), links);
  });

  const dropped: [string, string][] = [
    ["plain http to images.dog.ceo", "http://images.dog.ceo/breeds/hound-afghan/n1.jpg"],
    ["a javascript: URL", "javascript:alert(1)"],
    ["a data: URL", "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="],
    ["another host", "https://evil.example/dog.jpg"],
    ["a look-alike host", "https://images.dog.ceo.evil.example/dog.jpg"],
    ["the stand-in on another port", "http://127.0.0.1:9999/images/breeds/pug/a.svg"],
    ["a user and password in the URL", "https://user:pw@images.dog.ceo/breeds/pug/a.jpg"],
    ["a user in the URL", "https://user@images.dog.ceo/breeds/pug/a.jpg"],
    ["something that is not a URL", "not a url"],
  ];
  for (const [name, link] of dropped) {
    test(`when a link is ${name}, it is dropped`, () => {
      assert.deepEqual(keepTrustedLinks([link], origins, log), []);
    });
  }

  test("when a link appears twice (even spelled differently), it is kept once", () => {
    const a = "https://images.dog.ceo/breeds/pug/a.jpg";
    assert.deepEqual(
      keepTrustedLinks(
        [a, a, "https://images.dog.ceo:443/breeds/pug/a.jpg", "https://images.dog.ceo/breeds/pug/b.jpg"],
        origins,
        log,
      ),
      [a, "https://images.dog.ceo/breeds/pug/b.jpg"],
    );
  });
});

test("cachedFor: an answer is kept for its time, then given once more while a fresh one is read, and awaited when twice as old", async (t) => {
  // The clock is the test's: a busy machine cannot stretch 50 ms into 100.
  t.mock.timers.enable({ apis: ["Date"], now: 0 });
  let loads = 0;
  const read = cachedFor(50, async (_key: string) => ++loads);
  assert.equal(await read("k"), 1);
  assert.equal(await read("k"), 1, "within its time: no query");
  t.mock.timers.tick(60);
  assert.equal(await read("k"), 1, "past its time: the old answer at once");
  assert.equal(loads, 2, "while a fresh one is read");
  t.mock.timers.tick(5);
  assert.equal(await read("k"), 2, "then the fresh one");
  t.mock.timers.tick(110);
  assert.equal(await read("k"), 3, "twice as old: the asker waits for a fresh one");
});

test("cachedFor with a short wait: an asker of an old answer waits that long for the fresh one, then takes the old; forget() drops a read under way", async (t) => {
  t.mock.timers.enable({ apis: ["Date", "setTimeout"], now: 0 });
  const answers: ((n: number) => void)[] = [];
  const read = cachedFor<void, number>(
    { ttlMs: 1000, staleMs: 5000, waitMs: 50 },
    () => new Promise((resolve) => answers.push(resolve)),
  );
  const first = read();
  answers.shift()!(1);
  assert.equal(await first, 1);
  t.mock.timers.tick(1500);
  const quick = read();
  answers.shift()!(2);
  assert.equal(await quick, 2, "a fresh answer within the wait");
  t.mock.timers.tick(1500);
  const slow = read();
  t.mock.timers.tick(50);
  assert.equal(await slow, 2, "the old answer after the wait");
  assert.equal(answers.length, 1, "one read under way, not one per asker");
  assert.equal(
    await Promise.race([read(), new Promise((resolve) => setImmediate(() => resolve("waiting")))]),
    "waiting",
    "the read under way is shared",
  );
  read.forget();
  const afterForget = read();
  assert.equal(answers.length, 2, "forget: the next asker reads anew");
  answers.shift()!(3);
  answers.shift()!(4);
  assert.equal(await afterForget, 4);
  assert.equal(await read(), 4, "the read from before forget() is not kept");
});
