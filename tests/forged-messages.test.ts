// Forged job messages on the work queue: anyone who can publish there can copy a task's job
// and write any x-attempt or body. The task row, not the message, decides the run's number,
// when a waiting task may run and how much of its budget is left; an invalid message goes to
// the dead letters and leaves its task alone.
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";
import { publishRaw, queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const FINISHED = ["SUCCESS", "FAILURE", "REVOKED"];

/** Jobs the stack's workers acked without running (already done, running elsewhere, or not due). */
const skipped = (stack: Stack) => stack.workers.reduce((sum, w) => sum + w.counters.skipped, 0);

describe("when someone publishes copies of a task's job", () => {
  let stack: Stack;
  let fake: FakeDogApi;
  let q: string;
  before(async () => {
    // Every image list takes a while, so copies arrive while the real run is still going;
    // a retry waits 5-10 s, so copies arrive while the task waits for it.
    fake = await startFakeDogApi({ latencyMs: 1500 });
    stack = await startStack({
      fake,
      workers: 1,
      env: { RETRY_MAX_ATTEMPTS: "5", RETRY_BASE_MS: "10000", RETRY_MAX_MS: "10000" },
    });
    q = stack.config.queueName;
  });
  after(async () => {
    await stack?.stop();
    await fake?.close();
  });

  test("then 8 copies with x-attempt 99 of a running task's job leave its run alone, and it ends SUCCESS after one run", async () => {
    const requestsBefore = fake.requests;
    const skippedBefore = skipped(stack);
    const { body } = await stack.http().post("/api/tasks").send({ breed: "hound", limit: 2 }).expect(202);
    const taskId = body.id as string;
    await waitForTaskState(stack.db, taskId, ["STARTED"]);
    const job = JSON.stringify({ taskId, breed: "hound", limit: 2 });
    for (let i = 0; i < 8; i++) await publishRaw(q, job, { "x-attempt": 99 });
    await waitFor("the copies to be acked", () => skipped(stack) >= skippedBefore + 8, 15_000);
    const task = await waitForTaskState(stack.db, taskId, FINISHED, 15_000);
    assert.deepEqual([task.state, task.error, task.attemptCount], ["SUCCESS", null, 1]);
    const runs = await stack.db.attempt.findMany({ where: { taskId }, orderBy: { number: "asc" } });
    assert.deepEqual(
      runs.map((r) => [r.number, r.outcome]),
      [[1, "SUCCESS"]],
    );
    assert.equal(fake.requests - requestsBefore, 1, "dog.ceo was asked once");
  });

  test("then 5 copies of a task's job while it waits to retry run nothing early, and its own retry still runs it", async () => {
    const requestsBefore = fake.requests;
    const deadBefore = await queueDepth(`${q}.dead`);
    fake.failNext("http503", 1);
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    const taskId = body.id as string;
    const waiting = await waitForTaskState(stack.db, taskId, ["RETRY"], 15_000);
    // dog.ceo would fail every run the copies started: each would spend the budget.
    fake.failNext("http503", 10);
    const skippedBefore = skipped(stack);
    const job = JSON.stringify({ taskId, breed: "pug", limit: 2 });
    for (const attempt of [2, 3, 4, 5, 99]) await publishRaw(q, job, { "x-attempt": attempt });
    await waitFor("the copies to be acked", () => skipped(stack) >= skippedBefore + 5, 15_000);
    const still = await stack.db.task.findUniqueOrThrow({ where: { id: taskId } });
    assert.deepEqual(
      [still.state, still.attemptCount, still.retryAt?.getTime()],
      ["RETRY", 1, waiting.retryAt?.getTime()],
    );
    assert.equal(fake.requests - requestsBefore, 1, "dog.ceo was asked once, by the real run");
    fake.clearFaults();
    const task = await waitForTaskState(stack.db, taskId, FINISHED, 20_000);
    assert.deepEqual([task.state, task.attemptCount], ["SUCCESS", 2]);
    assert.equal(await queueDepth(`${q}.dead`), deadBefore);
  });

  test("then a message naming a task but invalid (firstAttempt -1, or not JSON) is dead-lettered and the task runs as usual", async () => {
    const deadBefore = await queueDepth(`${q}.dead`);
    const requestsBefore = fake.requests;
    const taskId = randomUUID();
    await stack.db.task.create({ data: { id: taskId, breed: "hound", limit: 2 } });
    await publishRaw(q, JSON.stringify({ taskId, breed: "hound", limit: 2, firstAttempt: -1 }), { "x-attempt": 1 });
    await publishRaw(q, `garbage "taskId": "${taskId}" garbage`);
    await waitFor("both dead-lettered", async () => (await queueDepth(`${q}.dead`)) === deadBefore + 2);
    const untouched = await stack.db.task.findUniqueOrThrow({ where: { id: taskId } });
    assert.deepEqual([untouched.state, untouched.error, untouched.attemptCount], ["PENDING", null, 0]);
    assert.equal(fake.requests, requestsBefore, "nothing was fetched for them");
    // Its real job still runs it.
    await publishRaw(q, JSON.stringify({ taskId, breed: "hound", limit: 2 }), { "x-attempt": 1 });
    assert.equal((await waitForTaskState(stack.db, taskId, FINISHED, 15_000)).state, "SUCCESS");
  });
});
