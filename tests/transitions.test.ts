// Every named transition of lib/lifecycle/lifecycle.ts from every state, on a real SQLite file:
// allowed where TRANSITIONS says so (the task ends in its target state), refused
// everywhere else (the task is left exactly as it was).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { openDatabase, type Db } from "../lib/store/db.ts";
import { openStore, type TaskStore } from "../lib/store/index.ts";
import { freshDatabase, type TestDatabase } from "./support/database.ts";
import type { AppEvent } from "../lib/live/events.ts";
import { createLifecycle, TRANSITIONS, type Lifecycle, type Transition } from "../lib/lifecycle/lifecycle.ts";
import { migrateIfNeeded } from "../lib/store/migrate.ts";
import { TASK_STATES, type TaskState } from "../lib/lifecycle/shapes.ts";

let database: TestDatabase;
let db: Db;
let store: TaskStore;
let lifecycle: Lifecycle;
const events: AppEvent[] = [];

before(async () => {
  database = await freshDatabase();
  const url = database.url;
  await migrateIfNeeded(url);
  db = await openDatabase(url);
  store = await openStore(url);
  lifecycle = createLifecycle(store, { emit: (event) => events.push(event) });
});

after(async () => {
  await db.$disconnect();
  await store.close();
  await database.drop();
});

/** A task in `state` whose first run (attempt 1) is open, as a worker would hold it. */
async function taskIn(state: TaskState) {
  const id = randomUUID();
  await db.task.create({
    data: { id, breed: "pug", limit: 2, state, attemptCount: 1, retryAt: state === "RETRY" ? new Date() : null },
  });
  const attempt = await db.attempt.create({ data: { taskId: id, number: 1, workerId: "w" } });
  return { taskId: id, attemptId: attempt.id, number: 1 };
}

/** What a recovery sweep does to the run of a worker that went silent, before it sends the task again. */
async function lose(run: Awaited<ReturnType<typeof taskIn>>) {
  await db.attempt.update({ where: { id: run.attemptId }, data: { outcome: "LOST", finishedAt: new Date() } });
}

const apply: Record<Transition, (run: Awaited<ReturnType<typeof taskIn>>) => Promise<unknown>> = {
  // The next attempt's job, as the broker redelivers it (the only way to take a STARTED task whose run is not lost).
  claim: (run) => lifecycle.claim({ taskId: run.taskId, attempt: 2, redelivered: true, workerId: "w2" }),
  retry: (run) => lifecycle.retry(run, "dog.ceo answered 503", 1000),
  succeed: (run) =>
    lifecycle.succeed({ ...run, breed: "pug", subBreed: null }, ["https://images.dog.ceo/breeds/pug/a.jpg"]),
  fail: (run) => lifecycle.fail(run, "dog.ceo: breed not found"),
  failPoison: (run) => lifecycle.failPoison(run.taskId, "invalid job message"),
  revoke: (run) => lifecycle.revoke(run.taskId),
  stop: (run) => lifecycle.stop(run.taskId, "ops from 127.0.0.1"),
  rerun: (run) => lifecycle.rerun([run.taskId], "admin"),
};

describe("the task lifecycle's transitions", () => {
  for (const [name, { from, to }] of Object.entries(TRANSITIONS) as [
    Transition,
    { from: readonly TaskState[]; to: TaskState },
  ][]) {
    for (const state of TASK_STATES) {
      const allowed = from.includes(state);
      test(`${name} from ${state} is ${allowed ? `allowed and ends ${to}` : "refused and changes nothing"}`, async () => {
        const run = await taskIn(state);
        const before = await db.task.findUniqueOrThrow({ where: { id: run.taskId } });
        events.length = 0;
        await apply[name](run);
        const after = await db.task.findUniqueOrThrow({ where: { id: run.taskId } });
        if (allowed) {
          assert.equal(after.state, to);
          assert.ok(
            after.updatedAt > before.updatedAt || after.updatedAt.getTime() === before.updatedAt.getTime(),
            "updatedAt never goes back",
          );
          const told = events.filter((e) => e.type === "task" && e.task.id === run.taskId);
          assert.equal(told.length, 1, "one event per state change");
        } else {
          assert.deepEqual(after, before);
          assert.equal(events.length, 0, "no event when nothing changed");
        }
      });
    }
  }

  test("claim takes back a STARTED task only for a redelivered job or once its run was marked lost, whatever x-attempt says", async () => {
    const run = await taskIn("STARTED");
    assert.equal(
      (await lifecycle.claim({ taskId: run.taskId, attempt: 1, redelivered: false, workerId: "w2" })).kind,
      "skip",
    );
    for (const attempt of [2, 99])
      assert.equal(
        (await lifecycle.claim({ taskId: run.taskId, attempt, redelivered: false, workerId: "w2" })).kind,
        "skip",
        `x-attempt ${attempt}`,
      );
    const again = await lifecycle.claim({ taskId: run.taskId, attempt: 1, redelivered: true, workerId: "w2" });
    assert.equal(again.kind, "run");
    const runs = await db.attempt.findMany({ where: { taskId: run.taskId }, orderBy: { number: "asc" } });
    assert.deepEqual(
      runs.map((r) => [r.number, r.outcome]),
      [
        [1, "LOST"],
        [2, null],
      ],
    );
  });

  test("a STARTED task whose run a recovery sweep marked lost is claimed by the job it sends, as the next attempt", async () => {
    const run = await taskIn("STARTED");
    await lose(run);
    const claim = await lifecycle.claim({ taskId: run.taskId, attempt: 2, redelivered: false, workerId: "w2" });
    assert.deepEqual(claim.kind === "run" && [claim.number, claim.task.attemptCount], [2, 2]);
    assert.equal(
      (await lifecycle.claim({ taskId: run.taskId, attempt: 3, redelivered: false, workerId: "w3" })).kind,
      "skip",
      "the new run is not lost",
    );
  });

  test("a RETRY task is claimed only once its wait is over, whatever x-attempt says", async () => {
    const id = randomUUID();
    await db.task.create({
      data: { id, breed: "pug", limit: 2, state: "RETRY", attemptCount: 1, retryAt: new Date(Date.now() + 60_000) },
    });
    for (const attempt of [2, 3, 99])
      assert.equal(
        (await lifecycle.claim({ taskId: id, attempt, redelivered: false, workerId: "w" })).kind,
        "skip",
        `x-attempt ${attempt}`,
      );
    assert.equal((await db.task.findUniqueOrThrow({ where: { id } })).attemptCount, 1);
    await db.task.update({ where: { id }, data: { retryAt: new Date(Date.now() - 1) } });
    const claim = await lifecycle.claim({ taskId: id, attempt: 99, redelivered: false, workerId: "w" });
    assert.deepEqual(claim.kind === "run" && claim.number, 2, "the row numbers the run, not the message");
  });

  test("only the latest run finishes a task: an older run's success is recorded as skipped", async () => {
    const run = await taskIn("STARTED");
    await lose(run);
    await lifecycle.claim({ taskId: run.taskId, attempt: 2, redelivered: false, workerId: "w2" });
    assert.equal(
      await lifecycle.succeed({ ...run, breed: "pug", subBreed: null }, ["https://images.dog.ceo/breeds/pug/x.jpg"]),
      undefined,
    );
    const task = await db.task.findUniqueOrThrow({ where: { id: run.taskId } });
    assert.equal(task.state, "STARTED");
    assert.equal((await db.attempt.findUniqueOrThrow({ where: { id: run.attemptId } })).outcome, "SKIPPED");
    assert.equal(await db.taskPhoto.count({ where: { taskId: run.taskId } }), 0);
  });

  test("a redelivered job of an older attempt leaves a newer run alone", async () => {
    const run = await taskIn("STARTED");
    await lose(run);
    const second = await lifecycle.claim({ taskId: run.taskId, attempt: 2, redelivered: false, workerId: "w2" });
    assert.equal(second.kind, "run");
    const late = await lifecycle.claim({ taskId: run.taskId, attempt: 1, redelivered: true, workerId: "w3" });
    assert.deepEqual(late, { kind: "skip", state: "STARTED" });
    const runs = await db.attempt.findMany({ where: { taskId: run.taskId }, orderBy: { number: "asc" } });
    assert.deepEqual(
      runs.map((r) => [r.number, r.workerId, r.outcome]),
      [
        [1, "w", "LOST"],
        [2, "w2", null],
      ],
    );
    assert.equal((await db.task.findUniqueOrThrow({ where: { id: run.taskId } })).attemptCount, 2);
  });

  test("a run whose task was finished meanwhile records its retry or failure as skipped, not as what it wanted", async () => {
    for (const finish of [
      (run: Awaited<ReturnType<typeof taskIn>>) => lifecycle.retry(run, "dog.ceo answered 503", 1000),
      (run: Awaited<ReturnType<typeof taskIn>>) => lifecycle.fail(run, "dog.ceo: no such breed"),
    ]) {
      const run = await taskIn("STARTED");
      await lifecycle.failPoison(run.taskId, "invalid job message");
      assert.equal(await finish(run), undefined);
      const task = await db.task.findUniqueOrThrow({ where: { id: run.taskId } });
      assert.deepEqual([task.state, task.error, task.retryAt], ["FAILURE", "invalid job message", null]);
      const attempt = await db.attempt.findUniqueOrThrow({ where: { id: run.attemptId } });
      assert.deepEqual([attempt.outcome, attempt.retryDelayMs], ["SKIPPED", null]);
    }
  });

  test("when a worker starts a job before the broker's confirm is back, the task's queued time is not after its start", async () => {
    const id = randomUUID();
    const { job } = await lifecycle.accept({ id, breed: "pug", subBreed: null, limit: 1 }, "{}", 0);
    await lifecycle.claim({ taskId: id, attempt: 1, redelivered: false, workerId: "w" });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await lifecycle.markQueued([job]);
    const task = await db.task.findUniqueOrThrow({ where: { id } });
    assert.ok(
      task.queuedAt && task.startedAt && task.queuedAt <= task.startedAt,
      `queued ${task.queuedAt?.toISOString()}, started ${task.startedAt?.toISOString()}`,
    );
    assert.equal((await db.outboxMessage.findFirstOrThrow({ where: { taskId: id } })).sentAt !== null, true);
  });

  test("when the relay's queued time lands after the worker's start (clocks a hair apart), the claim brings it back to the start", async () => {
    const id = randomUUID();
    const { job } = await lifecycle.accept({ id, breed: "pug", subBreed: null, limit: 1 }, "{}", 0);
    await lifecycle.markQueued([job]);
    // As if the relay's host ran a second ahead of the worker's.
    await db.task.update({ where: { id }, data: { queuedAt: new Date(Date.now() + 1000) } });
    await lifecycle.claim({ taskId: id, attempt: 1, redelivered: false, workerId: "w" });
    const task = await db.task.findUniqueOrThrow({ where: { id } });
    assert.ok(
      task.queuedAt && task.startedAt && task.queuedAt <= task.startedAt,
      `queued ${task.queuedAt?.toISOString()}, started ${task.startedAt?.toISOString()}`,
    );
  });

  test("when a task that already ran is cancelled, its reason says it waited to try again, not that it never ran", async () => {
    const fresh = randomUUID();
    await lifecycle.accept({ id: fresh, breed: "pug", subBreed: null, limit: 1 }, "{}", 0);
    const ran = randomUUID();
    await db.task.create({
      data: { id: ran, breed: "pug", limit: 2, state: "RETRY", attemptCount: 1, retryAt: new Date() },
    });
    assert.equal((await lifecycle.revoke(fresh)).kind, "revoked");
    assert.equal((await lifecycle.revoke(ran)).kind, "revoked");
    const reasons = await db.task.findMany({ where: { id: { in: [fresh, ran] } }, select: { id: true, error: true } });
    assert.deepEqual(Object.fromEntries(reasons.map((r) => [r.id === fresh ? "fresh" : "ran", r.error])), {
      fresh: "cancelled before it ran",
      ran: "cancelled while it waited to try again",
    });
  });

  test("a task retried by hand starts a new budget: old attempts kept, who and when recorded, its job published as the next attempt", async () => {
    const run = await taskIn("STARTED");
    await lifecycle.fail(run, "gave up after 1 attempts: dog.ceo answered 503");
    const [rerun] = await lifecycle.rerun([run.taskId, randomUUID()], "admin from 127.0.0.1");
    assert.ok(rerun, "the failed task was sent again; the unknown id was passed by");
    assert.deepEqual(
      {
        state: rerun.task.state,
        base: rerun.task.attemptBase,
        count: rerun.task.attemptCount,
        error: rerun.task.error,
        by: rerun.task.retriedBy,
      },
      { state: "PENDING", base: 1, count: 1, error: null, by: "admin from 127.0.0.1" },
    );
    assert.ok(rerun.task.retriedAt instanceof Date);
    assert.deepEqual(
      { attempt: rerun.job.attempt, body: JSON.parse(rerun.job.body) },
      { attempt: 2, body: { taskId: run.taskId, breed: "pug", limit: 2, firstAttempt: 2, rerun: true } },
    );
    const outbox = await db.outboxMessage.findFirstOrThrow({ where: { id: rerun.job.id } });
    assert.deepEqual([outbox.attempt, outbox.sentAt], [2, null]);
    // The new job's delivery claims it as the second run; the first stays as it ended.
    const claim = await lifecycle.claim({
      taskId: run.taskId,
      attempt: rerun.job.attempt,
      redelivered: false,
      workerId: "w2",
    });
    assert.equal(claim.kind, "run");
    const runs = await db.attempt.findMany({ where: { taskId: run.taskId }, orderBy: { number: "asc" } });
    assert.deepEqual(
      runs.map((r) => [r.number, r.outcome]),
      [
        [1, "FAILURE"],
        [2, null],
      ],
    );
    assert.deepEqual(await lifecycle.rerun([run.taskId], "admin"), [], "a running task is not sent again");
  });

  test("a task stopped while its worker was about to store photos ends REVOKED, its run saying who stopped it, with no photos", async () => {
    const run = await taskIn("STARTED");
    const stopped = await lifecycle.stop(run.taskId, "ops from 127.0.0.1");
    assert.equal(stopped.kind, "revoked");
    // The worker's dog.ceo call came back before it heard the stop: its result is dropped.
    assert.equal(
      await lifecycle.succeed({ ...run, breed: "pug", subBreed: null }, ["https://images.dog.ceo/breeds/pug/late.jpg"]),
      undefined,
    );
    assert.equal(await lifecycle.retry(run, "dog.ceo answered 503", 1000), undefined);
    const task = await db.task.findUniqueOrThrow({ where: { id: run.taskId } });
    assert.deepEqual(
      [task.state, task.error, task.finishedAt instanceof Date],
      ["REVOKED", "stopped by ops from 127.0.0.1 while running", true],
    );
    const attempt = await db.attempt.findUniqueOrThrow({ where: { id: run.attemptId } });
    assert.deepEqual([attempt.outcome, attempt.error], ["REVOKED", "stopped by ops from 127.0.0.1 while running"]);
    assert.equal(await db.taskPhoto.count({ where: { taskId: run.taskId } }), 0);
    const again = await lifecycle.stop(run.taskId, "ops from 127.0.0.1");
    assert.equal(again.kind, "refused", "a second stop does nothing");
  });

  test("claim of a task that does not exist says so", async () => {
    assert.equal(
      (await lifecycle.claim({ taskId: randomUUID(), attempt: 1, redelivered: false, workerId: "w" })).kind,
      "missing",
    );
  });

  test("a stored error is shortened, and says so", async () => {
    const run = await taskIn("STARTED");
    await lifecycle.fail(run, `dog.ceo: ${"x".repeat(1_000_000)}`);
    const task = await db.task.findUniqueOrThrow({ where: { id: run.taskId } });
    assert.ok(task.error!.length <= 500, `${task.error!.length} characters`);
    assert.match(task.error!, /… \(shortened\)$/);
  });
});
