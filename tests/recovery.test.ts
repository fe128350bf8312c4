// No task left behind: the workers' recovery sweep sends again what the broker never got
// (an overdue retry, the run of a worker that went silent, an outbox row no web relays, a
// PENDING task no run ever claimed),
// once, even with several workers sweeping; and a stalled broker link does not leave a
// task in RETRY for ever.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createLogger } from "../lib/platform/logger.ts";
import { submitTask } from "../lib/useCases/tasks.ts";
import { startWorker } from "../tasks/worker.ts";
import type { DogApi } from "../lib/dogs/dogApi.ts";
import { createLifecycle } from "../lib/lifecycle/lifecycle.ts";
import type { TaskStore } from "../lib/store/index.ts";
import { createJobHandler } from "../tasks/job.ts";
import { startTcpProxy, type TcpProxy } from "./support/faults.ts";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";
import { freshStore, type TestStore } from "./support/store.ts";

const GRACE_MS = 600;
const FINAL = ["SUCCESS", "FAILURE"];

describe("when a task's next run never reached the broker", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ web: false, workers: 2, env: { RECOVERY_GRACE_MS: String(GRACE_MS) } });
  });
  after(() => stack.stop());

  test("then an overdue RETRY task is sent again by one worker and succeeds with one more run", async () => {
    const ids = Array.from({ length: 20 }, () => randomUUID());
    const overdue = new Date(Date.now() - 5 * GRACE_MS);
    for (const id of ids) {
      await stack.db.task.create({
        data: {
          id,
          breed: "hound",
          limit: 2,
          state: "RETRY",
          attemptCount: 1,
          retryAt: overdue,
          error: "dog.ceo answered 503",
        },
      });
      await stack.db.attempt.create({
        data: { taskId: id, number: 1, workerId: "w-old", outcome: "RETRY", finishedAt: overdue },
      });
    }
    for (const id of ids) assert.equal((await waitForTaskState(stack.db, id, FINAL, 15_000)).state, "SUCCESS");
    const runs = await stack.db.attempt.groupBy({ by: ["taskId"], where: { taskId: { in: ids } }, _count: true });
    assert.deepEqual(new Set(runs.map((r) => r._count)), new Set([2]), "each task ran once more, not once per worker");
  });

  test("then a STARTED task whose worker went silent is run again, its lost run marked LOST", async () => {
    const id = randomUUID();
    const longAgo = new Date(Date.now() - 5 * GRACE_MS);
    await stack.db.task.create({
      data: { id, breed: "pug", limit: 3, state: "STARTED", attemptCount: 1, startedAt: longAgo },
    });
    await stack.db.attempt.create({ data: { taskId: id, number: 1, workerId: "w-gone", startedAt: longAgo } });
    const task = await waitForTaskState(stack.db, id, FINAL, 15_000);
    assert.equal(task.state, "SUCCESS");
    assert.equal(task.photoCount, 3);
    const runs = await stack.db.attempt.findMany({ where: { taskId: id }, orderBy: { number: "asc" } });
    assert.deepEqual(
      runs.map((r) => [r.number, r.outcome]),
      [
        [1, "LOST"],
        [2, "SUCCESS"],
      ],
    );
  });

  test("then a STARTED task whose worker still sends heartbeats is left to it", async () => {
    const id = randomUUID();
    const longAgo = new Date(Date.now() - 5 * GRACE_MS);
    const worker = stack.workers[0]!;
    await stack.db.task.create({
      data: { id, breed: "pug", limit: 3, state: "STARTED", attemptCount: 1, startedAt: longAgo },
    });
    await stack.db.attempt.create({ data: { taskId: id, number: 1, workerId: worker.id, startedAt: longAgo } });
    await new Promise((resolve) => setTimeout(resolve, 4 * GRACE_MS));
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "STARTED");
    await stack.db.task.update({ where: { id }, data: { state: "FAILURE" } });
  });

  test("then a PENDING task that no run claimed long after it was queued is sent again and succeeds", async () => {
    const id = randomUUID();
    const longAgo = new Date(Date.now() - 20 * GRACE_MS);
    await stack.db.task.create({
      data: { id, breed: "pug", limit: 2, state: "PENDING", createdAt: longAgo, queuedAt: longAgo },
    });
    await stack.db.outboxMessage.create({
      data: { taskId: id, body: "{}", createdAt: longAgo, sentAt: longAgo, tries: 1 },
    });
    const task = await waitForTaskState(stack.db, id, FINAL, 15_000);
    assert.deepEqual([task.state, task.photoCount, task.attemptCount], ["SUCCESS", 2, 1]);
  });

  test("then a PENDING task queued a short while ago, or a RETRY task still within its own delay, is left waiting", async () => {
    const pending = randomUUID();
    const retrying = randomUUID();
    const recently = new Date(Date.now() - 3 * GRACE_MS);
    await stack.db.task.create({
      data: { id: pending, breed: "pug", limit: 2, state: "PENDING", createdAt: recently, queuedAt: recently },
    });
    // Its retry was scheduled with a long delay (a queue's head may hold it up to that long again): due 2 graces ago,
    // but not lost.
    const due = new Date(Date.now() - 2 * GRACE_MS);
    // Made RETRY and dated in one statement: created RETRY with updatedAt now, a sweep in between would find it
    // overdue.
    await stack.db.task.create({
      data: { id: retrying, breed: "pug", limit: 2, state: "FAILURE", attemptCount: 1, retryAt: due },
    });
    await stack.db.$executeRawUnsafe(
      stack.config.databaseUrl.startsWith("postgres")
        ? `UPDATE "Task" SET state = 'RETRY', "updatedAt" = $1 WHERE id = $2`
        : `UPDATE Task SET state = 'RETRY', updatedAt = ? WHERE id = ?`,
      new Date(due.getTime() - 10 * GRACE_MS),
      retrying,
    );
    await new Promise((resolve) => setTimeout(resolve, 4 * GRACE_MS));
    const states = await stack.db.task.findMany({
      where: { id: { in: [pending, retrying] } },
      orderBy: { state: "asc" },
      select: { state: true, attemptCount: true },
    });
    assert.deepEqual(states, [
      { state: "PENDING", attemptCount: 0 },
      { state: "RETRY", attemptCount: 1 },
    ]);
    await stack.db.task.updateMany({ where: { id: { in: [pending, retrying] } }, data: { state: "FAILURE" } });
  });

  test("then an outbox row that no web relays is published by a worker once it is older than the grace period", async () => {
    const { task } = await submitTask(stack.taskDeps(), { breed: "hound", limit: 2 });
    assert.equal((await waitForTaskState(stack.db, task.id, FINAL, 15_000)).state, "SUCCESS");
    // The row is marked sent after the broker's confirm, which may come after the job ran.
    const outbox = await waitFor("the outbox row marked sent", () =>
      stack.db.outboxMessage.findFirst({ where: { taskId: task.id, sentAt: { not: null } } }),
    );
    assert.ok(
      outbox.sentAt && outbox.sentAt.getTime() - outbox.createdAt.getTime() >= GRACE_MS,
      "left to its web during the grace period",
    );
  });
});

describe("when the database fails at every claim of a job", () => {
  let store: TestStore;
  before(async () => {
    store = await freshStore();
  });
  after(() => store.drop());

  test("then its last allowed try (RETRY_MAX_ATTEMPTS, as for runs) dead-letters the job and fails the task, instead of leaving it PENDING", async () => {
    const failingClaims: TaskStore = {
      ...store,
      claim: async () => Promise.reject(new Error("SQLITE_IOERR: disk I/O error")),
    };
    const lifecycle = createLifecycle(failingClaims, { emit: () => {} });
    const id = randomUUID();
    await lifecycle.accept({ id, breed: "pug", subBreed: null, limit: 2 }, "{}", 0);
    const retry = { maxAttempts: 3, baseMs: 10, maxMs: 40 };
    const handle = createJobHandler({
      lifecycle,
      dogApi: {} as DogApi,
      logger: createLogger("silent", "test"),
      workerId: "w",
      retry,
      imageOrigins: [],
    });
    const content = Buffer.from(JSON.stringify({ taskId: id, breed: "pug", limit: 2 }));
    assert.deepEqual(
      await handle({ content, attempt: 1, redelivered: false }).then((o) => o.action === "retry" && o.attempt),
      2,
    );
    assert.equal((await handle({ content, attempt: 2, redelivered: false })).action, "retry");
    assert.equal((await store.task(id))!.state, "PENDING", "a retry is still coming");
    assert.equal((await handle({ content, attempt: retry.maxAttempts, redelivered: false })).action, "dead-letter");
    const task = (await store.task(id))!;
    assert.equal(task.state, "FAILURE");
    assert.match(task.error!, /^gave up after 3 attempts: unexpected error: SQLITE_IOERR/);
  });
});

/** Follows the handler's outcomes as the broker would: each retry is delivered again once its wait is over. */
async function deliverUntilSettled(
  handle: ReturnType<typeof createJobHandler>,
  content: Buffer,
  max = 10,
): Promise<string[]> {
  const actions: string[] = [];
  let attempt = 1;
  for (let i = 0; i < max; i++) {
    const outcome = await handle({ content, attempt, redelivered: false });
    actions.push(outcome.action);
    if (outcome.action !== "retry") break;
    await new Promise((resolve) => setTimeout(resolve, outcome.delayMs + 5));
    attempt = outcome.attempt;
  }
  return actions;
}

describe("when runs of a task meet an unexpected error (not dog.ceo's)", () => {
  let store: TestStore;
  const retry = { maxAttempts: 3, baseMs: 10, maxMs: 40 };
  const dogApi = { randomImages: async () => ["https://images.dog.ceo/breeds/pug/a.jpg"] } as unknown as DogApi;
  const imageOrigins = ["https://images.dog.ceo"];
  before(async () => {
    store = await freshStore();
  });
  after(() => store.drop());

  test("then the task gets RETRY_MAX_ATTEMPTS runs, as for a dog.ceo error, and fails saying what happened", async () => {
    const failingSucceed: TaskStore = {
      ...store,
      succeed: async () => Promise.reject(new Error("SQLITE_FULL: database or disk is full")),
    };
    const lifecycle = createLifecycle(failingSucceed, { emit: () => {} });
    const id = randomUUID();
    await lifecycle.accept({ id, breed: "pug", subBreed: null, limit: 1 }, "{}", 0);
    const handle = createJobHandler({
      lifecycle,
      dogApi,
      logger: createLogger("silent", "test"),
      workerId: "w",
      retry,
      imageOrigins,
    });
    const actions = await deliverUntilSettled(
      handle,
      Buffer.from(JSON.stringify({ taskId: id, breed: "pug", limit: 1 })),
    );
    assert.deepEqual(actions, ["retry", "retry", "dead-letter"]);
    const task = (await store.task(id))!;
    assert.equal(task.state, "FAILURE");
    assert.equal(task.error, "gave up after 3 attempts: unexpected error: SQLITE_FULL: database or disk is full");
    assert.equal(task.attemptCount, 3);
  });

  test("then a run whose end the database could not take is written once it answers, and the job sent for the next run runs it", async () => {
    let down = true;
    const unavailable = () => Promise.reject(new Error("Connection terminated unexpectedly"));
    const flaky: TaskStore = {
      ...store,
      succeed: (...args) => (down ? unavailable() : store.succeed(...args)),
      finishRun: (...args) => (down ? unavailable() : store.finishRun(...args)),
    };
    const lifecycle = createLifecycle(flaky, { emit: () => {} });
    const id = randomUUID();
    await lifecycle.accept({ id, breed: "pug", subBreed: null, limit: 1 }, "{}", 0);
    const handle = createJobHandler({
      lifecycle,
      dogApi,
      logger: createLogger("silent", "test"),
      workerId: "w",
      retry,
      imageOrigins,
      patienceMs: 300, // the job gives up waiting in hand at once, not after a minute
    });
    const content = Buffer.from(JSON.stringify({ taskId: id, breed: "pug", limit: 1 }));
    const first = await handle({ content, attempt: 1, redelivered: false });
    assert.ok(first.action === "retry" && first.attempt === 2, JSON.stringify(first));
    assert.equal((await store.task(id))!.state, "STARTED", "the end of run 1 is not written yet");
    down = false;
    await new Promise((resolve) => setTimeout(resolve, first.delayMs + 5));
    assert.equal((await handle({ content, attempt: 2, redelivered: false })).action, "ack");
    const task = (await store.task(id))!;
    assert.deepEqual([task.state, task.attemptCount, task.photoCount], ["SUCCESS", 2, 1]);
  });
});

describe("when the broker link stalls (open but silent) for 30 s while retries are being published", () => {
  let stack: Stack;
  let proxy: TcpProxy;
  before(async () => {
    stack = await startStack({ workers: 0, env: { RECOVERY_GRACE_MS: "1000", DOG_API_TIMEOUT_MS: "1000" } });
    proxy = await startTcpProxy(5672);
    const url = new URL(stack.config.amqpUrl);
    url.host = `127.0.0.1:${proxy.port}`;
    stack.workers.push(await startWorker({ ...stack.config, amqpUrl: url.href }, createLogger("silent", "test")));
  });
  after(async () => {
    proxy.resume();
    await stack.stop();
    await proxy.close();
  });

  test("then every task still ends SUCCESS or FAILURE, none left in RETRY", { timeout: 120_000 }, async () => {
    stack.fake.failNext("hang", 6); // each first call times out after 1 s: a transient failure, so a retry
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      ids.push((await stack.http().post("/api/tasks").send({ breed: "hound", limit: 2 }).expect(202)).body.id);
    await waitFor(
      "every task to be running",
      async () => (await stack.db.task.count({ where: { id: { in: ids }, state: "STARTED" } })) === ids.length,
    );
    proxy.stall();
    await waitFor(
      "the retries to be recorded",
      async () => (await stack.db.task.count({ where: { id: { in: ids }, state: "RETRY" } })) === ids.length,
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    proxy.resume();
    // Twice the largest backoff (400 ms here), after the worker is back (its reconnect backs off up to 10 s) and a
    // sweep.
    const settled = await waitFor(
      "every task to finish",
      async () => {
        const open = await stack.db.task.count({
          where: { id: { in: ids }, state: { notIn: ["SUCCESS", "FAILURE"] } },
        });
        return open === 0;
      },
      25_000,
    ).then(
      () => true,
      () => false,
    );
    const states = await stack.db.task.findMany({
      where: { id: { in: ids } },
      select: { state: true, attemptCount: true },
    });
    assert.ok(settled, `tasks left behind: ${JSON.stringify(states)}`);
    assert.deepEqual(new Set(states.map((t) => t.state)), new Set(["SUCCESS"]));
  });
});
