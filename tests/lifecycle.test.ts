// A task's life on the real parts: retries that wait in RabbitMQ, permanent failures,
// dead letters, poison messages, redelivered jobs, shared photos and cancellation.
import { retryBucket, retryQueueName, retryQueueNames } from "../tasks/broker/topology.ts";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import amqplib from "amqplib";
import type { FaultKind } from "../dev/fake-dog-api.ts";
import { createLogger } from "../lib/platform/logger.ts";
import { submitTask } from "../lib/useCases/tasks.ts";
import { startWorker } from "../tasks/worker.ts";
import {
  AMQP_URL,
  csrfTokenFrom,
  endRetryWaits,
  publishRaw,
  purgeQueue,
  queueDepth,
  startStack,
  waitFor,
  waitForTaskState,
  type Stack,
} from "./support/stack.ts";

const FINISHED = ["SUCCESS", "FAILURE", "REVOKED"];

/** The bodies of the messages in a queue, left in place (closing the channel requeues them). */
async function peekQueue(queue: string): Promise<string[]> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    const bodies: string[] = [];
    for (;;) {
      const msg = await channel.get(queue, { noAck: false });
      if (!msg) break;
      bodies.push(msg.content.toString());
    }
    await channel.close();
    return bodies;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function submitViaApi(stack: Stack, body: Record<string, unknown>): Promise<string> {
  const res = await stack.http().post("/api/tasks").send(body).expect(202);
  assert.equal(res.body.queued, true, "the broker confirmed the job");
  return res.body.id as string;
}

async function attemptsOf(stack: Stack, taskId: string) {
  return stack.db.attempt.findMany({ where: { taskId }, orderBy: { id: "asc" } });
}

/** Jobs waiting in any of the stack's retry queues. */
async function retryDepth(stack: Stack): Promise<number> {
  let total = 0;
  for (const name of retryQueueNames(stack.config.queueName, stack.config.retry.baseMs, stack.config.retry.maxMs))
    total += await queueDepth(name);
  return total;
}

/** Jobs the stack's workers have settled (acked or dead-lettered) so far. */
function settledJobs(stack: Stack): number {
  return stack.workers.reduce((sum, w) => sum + w.counters.done + w.counters.failed + w.counters.skipped, 0);
}

describe("task lifecycle", () => {
  let stack: Stack;
  let q: string;
  before(async () => {
    stack = await startStack({ workers: 1, env: { RETRY_MAX_ATTEMPTS: "3", DOG_API_TIMEOUT_MS: "1000" } });
    q = stack.config.queueName;
  });
  after(async () => {
    await stack?.stop();
  });

  const transient: { kind: FaultKind; error: RegExp }[] = [
    { kind: "http500", error: /^dog\.ceo answered 500 Internal Server Error$/ },
    { kind: "hang", error: /^dog\.ceo did not answer within 1 s \(headers timeout\)$/ },
    { kind: "badJson", error: /^dog\.ceo sent a reply that is not JSON \(200 OK, text\/html\)$/ },
    { kind: "truncated", error: /^dog\.ceo closed the connection before its answer was complete$/ },
  ];

  for (const { kind, error } of transient) {
    test(`when dog.ceo fails twice with ${kind}, then the task waits in RabbitMQ with growing backoff, retries and ends SUCCESS`, async () => {
      const requestsBefore = stack.fake.requests;
      const deadBefore = await queueDepth(`${q}.dead`);
      stack.fake.failNext(kind, 2);

      const taskId = await submitViaApi(stack, { breed: "pug", limit: 3 });
      const task = await waitForTaskState(stack.db, taskId, FINISHED, 15_000);

      assert.equal(task.state, "SUCCESS");
      assert.equal(task.attemptCount, 3);
      assert.equal(task.photoCount, 3);
      assert.equal(task.error, null, "a success clears the last retry's error");
      const runs = await attemptsOf(stack, taskId);
      assert.deepEqual(
        runs.map((r) => [r.number, r.outcome]),
        [
          [1, "RETRY"],
          [2, "RETRY"],
          [3, "SUCCESS"],
        ],
      );
      assert.match(runs[0]!.error ?? "", error);
      assert.match(runs[1]!.error ?? "", error);
      assert.equal(runs[2]!.error, null);
      // Equal jitter on base 50 ms: attempt n waits within [d/2, d] for d = 50 * 2^(n-1).
      const [d1, d2] = [runs[0]!.retryDelayMs!, runs[1]!.retryDelayMs!];
      assert.ok(d1 >= 25 && d1 <= 50, `first delay ${d1} within [25, 50]`);
      assert.ok(d2 >= 50 && d2 <= 100, `second delay ${d2} within [50, 100]`);
      assert.equal(runs[2]!.retryDelayMs, null);
      for (const i of [0, 1]) {
        const gap = runs[i + 1]!.startedAt.getTime() - runs[i]!.finishedAt!.getTime();
        assert.ok(
          gap >= runs[i]!.retryDelayMs!,
          `attempt ${i + 2} started ${gap} ms after attempt ${i + 1}, not before its ${runs[i]!.retryDelayMs} ms delay`,
        );
      }
      assert.equal(stack.fake.requests - requestsBefore, 3);

      const { body } = await stack.http().get(`/api/tasks/${taskId}`).expect(200);
      assert.equal(body.task.state, "SUCCESS");
      assert.deepEqual(
        body.attempts.map((a: { outcome: string }) => a.outcome),
        ["RETRY", "RETRY", "SUCCESS"],
      );
      assert.equal(body.photos.length, 3);

      assert.equal(await queueDepth(q), 0);
      assert.equal(await retryDepth(stack), 0);
      assert.equal(await queueDepth(`${q}.dead`), deadBefore);
    });
  }

  test("when dog.ceo answers 429 with Retry-After twice, then each retry waits for Retry-After, capped at RETRY_MAX_MS, and the task ends SUCCESS", async () => {
    stack.fake.failNext("http429", 2);
    const taskId = await submitViaApi(stack, { breed: "pug", limit: 2 });
    const task = await waitForTaskState(stack.db, taskId, FINISHED, 15_000);

    assert.equal(task.state, "SUCCESS");
    const runs = await attemptsOf(stack, taskId);
    assert.deepEqual(
      runs.map((r) => r.outcome),
      ["RETRY", "RETRY", "SUCCESS"],
    );
    for (const run of runs.slice(0, 2)) {
      assert.equal(run.error, "dog.ceo answered 429 Too Many Requests");
      // Retry-After: 1 (1000 ms) beats the jittered 25-100 ms, and RETRY_MAX_MS (400) caps it.
      assert.equal(run.retryDelayMs, 400);
    }
    for (const i of [0, 1]) {
      assert.ok(runs[i + 1]!.startedAt.getTime() - runs[i]!.finishedAt!.getTime() >= 400);
    }
    assert.equal(await retryDepth(stack), 0);
  });

  test("when dog.ceo does not know the breed, then the task fails at once: one attempt, FAILURE, nothing dead-lettered", async () => {
    const requestsBefore = stack.fake.requests;
    const deadBefore = await queueDepth(`${q}.dead`);
    const settledBefore = settledJobs(stack);
    // The API only accepts known breeds, so the unknown one enters below validation (the relay publishes it).
    const { task: created } = await submitTask(stack.taskDeps(), { breed: "nope", limit: 3 });
    const task = await waitForTaskState(stack.db, created.id, FINISHED, 10_000);
    await waitFor("the job to be settled", () => settledJobs(stack) > settledBefore);

    assert.equal(task.state, "FAILURE");
    assert.equal(task.error, "dog.ceo: Breed not found (main breed does not exist)");
    assert.equal(task.attemptCount, 1);
    const runs = await attemptsOf(stack, created.id);
    assert.deepEqual(
      runs.map((r) => [r.outcome, r.retryDelayMs]),
      [["FAILURE", null]],
    );
    assert.equal(stack.fake.requests - requestsBefore, 1);

    const { body } = await stack.http().get(`/api/tasks/${created.id}`).expect(200);
    assert.equal(body.task.state, "FAILURE");
    assert.equal(body.attempts.length, 1);

    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await queueDepth(q), 0);
    assert.equal(await queueDepth(`${q}.dead`), deadBefore);
  });

  test("when dog.ceo keeps failing, then the task gives up after RETRY_MAX_ATTEMPTS and its job lands in the dead-letter queue", async () => {
    const requestsBefore = stack.fake.requests;
    const deadBefore = await queueDepth(`${q}.dead`);
    stack.fake.failNext("http500", 10);
    try {
      const taskId = await submitViaApi(stack, { breed: "pug", limit: 4 });
      const task = await waitForTaskState(stack.db, taskId, FINISHED, 15_000);

      assert.equal(task.state, "FAILURE");
      assert.match(task.error ?? "", /gave up after 3 attempts: dog\.ceo answered 500/);
      assert.equal(task.attemptCount, 3);
      const runs = await attemptsOf(stack, taskId);
      assert.deepEqual(
        runs.map((r) => r.outcome),
        ["RETRY", "RETRY", "FAILURE"],
      );
      assert.equal(stack.fake.requests - requestsBefore, 3);

      await waitFor("the job in the dead-letter queue", async () => (await queueDepth(`${q}.dead`)) === deadBefore + 1);
      const dead = (await peekQueue(`${q}.dead`)).map((b) => JSON.parse(b) as { taskId: string });
      assert.ok(
        dead.some((job) => job.taskId === taskId),
        "the dead letter is this task's job",
      );
      assert.equal(await queueDepth(q), 0);

      const { body } = await stack.http().get("/api/queue").expect(200);
      assert.equal(body.dead, deadBefore + 1);
      assert.equal(body.retrying, 0);
    } finally {
      stack.fake.clearFaults();
    }
  });

  test("when malformed messages arrive, then they are dead-lettered, a task they name is left alone, and the worker keeps consuming", async () => {
    const deadBefore = await queueDepth(`${q}.dead`);
    const requestsBefore = stack.fake.requests;
    const named = await stack.db.task.create({ data: { id: randomUUID(), breed: "hound", limit: 3 } });
    const badLimit = JSON.stringify({ taskId: named.id, breed: "hound", limit: 999 });

    await publishRaw(q, "not json");
    await publishRaw(q, badLimit);

    await waitFor("both messages dead-lettered", async () => (await queueDepth(`${q}.dead`)) === deadBefore + 2);
    const dead = await peekQueue(`${q}.dead`);
    assert.ok(dead.includes("not json"));
    assert.ok(dead.includes(badLimit));
    // Anyone could have written them: the task waits for its own job (or the recovery sweep).
    const task = await stack.db.task.findUniqueOrThrow({ where: { id: named.id } });
    assert.deepEqual([task.state, task.error], ["PENDING", null]);
    assert.equal(await stack.db.attempt.count({ where: { taskId: named.id } }), 0);
    assert.equal(stack.fake.requests, requestsBefore, "nothing was fetched for them");
    await stack.db.task.update({ where: { id: named.id }, data: { state: "FAILURE" } });

    const next = await submitViaApi(stack, { breed: "hound", limit: 2 });
    assert.equal((await waitForTaskState(stack.db, next, FINISHED)).state, "SUCCESS");
    assert.equal(await queueDepth(q), 0);
    assert.equal(await queueDepth(`${q}.dead`), deadBefore + 2);
  });

  test("when a finished task's job is delivered again, then the worker acks it and changes nothing", async () => {
    const taskId = await submitViaApi(stack, { breed: "beagle", limit: 4 });
    assert.equal((await waitForTaskState(stack.db, taskId, FINISHED)).state, "SUCCESS");
    await waitFor("the job to be settled", async () => (await queueDepth(q)) === 0);
    const taskBefore = await stack.db.task.findUniqueOrThrow({ where: { id: taskId } });
    const runsBefore = await attemptsOf(stack, taskId);
    const linksBefore = await stack.db.taskPhoto.findMany({ where: { taskId }, orderBy: { position: "asc" } });
    const photosBefore = await stack.db.photo.findMany({ orderBy: { id: "asc" } });
    const apiBefore = (await stack.http().get(`/api/tasks/${taskId}`).expect(200)).body;
    const requestsBefore = stack.fake.requests;
    const deadBefore = await queueDepth(`${q}.dead`);
    const skippedBefore = stack.workers[0]!.counters.skipped;

    await publishRaw(q, JSON.stringify({ taskId, breed: "beagle", limit: 4 }));

    await waitFor(
      "the worker to ack the redelivered job",
      () => stack.workers[0]!.counters.skipped === skippedBefore + 1,
    );
    await waitFor("the work queue to drain", async () => (await queueDepth(q)) === 0);
    assert.equal(await queueDepth(`${q}.dead`), deadBefore);
    assert.equal(stack.fake.requests, requestsBefore, "dog.ceo was not asked again");
    assert.deepEqual(await stack.db.task.findUniqueOrThrow({ where: { id: taskId } }), taskBefore);
    assert.deepEqual(await attemptsOf(stack, taskId), runsBefore);
    assert.deepEqual(
      await stack.db.taskPhoto.findMany({ where: { taskId }, orderBy: { position: "asc" } }),
      linksBefore,
    );
    assert.deepEqual(await stack.db.photo.findMany({ orderBy: { id: "asc" } }), photosBefore);
    assert.deepEqual((await stack.http().get(`/api/tasks/${taskId}`).expect(200)).body, apiBefore);
  });

  test("when two tasks fetch the same images, then each lists all of them and the gallery holds each image once", async () => {
    // The stand-in has only 8 kelpie images, so both tasks get all 8; run them side by side.
    const [first, second] = await Promise.all([
      submitViaApi(stack, { breed: "kelpie", limit: 8 }),
      submitViaApi(stack, { breed: "kelpie", limit: 8 }),
    ]);
    const urlSets: string[][] = [];
    for (const id of [first!, second!]) {
      const task = await waitForTaskState(stack.db, id, FINISHED);
      assert.equal(task.state, "SUCCESS");
      assert.equal(task.photoCount, 8);
      assert.equal(await stack.db.taskPhoto.count({ where: { taskId: id } }), 8);
      const { body } = await stack.http().get(`/api/tasks/${id}`).expect(200);
      assert.equal(body.photos.length, 8);
      urlSets.push(body.photos.map((p: { url: string }) => p.url).sort());
    }
    assert.deepEqual(urlSets[0], urlSets[1]);
    const stored = await stack.db.photo.findMany({ where: { breed: "kelpie" } });
    assert.equal(stored.length, 8);
    assert.deepEqual(stored.map((p) => p.url).sort(), urlSets[0]);
    const gallery = (await stack.http().get("/api/photos?breed=kelpie").expect(200)).body;
    assert.equal(gallery.photos.length, 8);
    assert.equal(new Set(gallery.photos.map((p: { url: string }) => p.url)).size, 8);
  });
});

describe("a retry waits in RabbitMQ, not in the worker", () => {
  let stack: Stack;
  let q: string;
  before(async () => {
    // Waits of 30 to 60 s: far longer than the test looks, so what it sees while the job
    // waits does not depend on how fast this machine is. The test ends each wait itself.
    stack = await startStack({ workers: 1, env: { RETRY_BASE_MS: "60000", RETRY_MAX_MS: "120000" } });
    q = stack.config.queueName;
  });
  after(async () => {
    await stack?.stop();
  });

  /** Fails the next call, submits, and waits until the job sits in its retry queue. */
  async function taskWaitingToRetry(): Promise<{ taskId: string; retryQueue: string; retryDelayMs: number }> {
    stack.fake.failNext("http500", 1);
    const taskId = await submitViaApi(stack, { breed: "pug", limit: 2 });
    assert.equal((await waitForTaskState(stack.db, taskId, ["RETRY", ...FINISHED])).state, "RETRY");
    const { retryDelayMs } = (await attemptsOf(stack, taskId))[0]!;
    const retryQueue = retryQueueName(q, retryBucket(retryDelayMs!));
    await waitFor(`the job in ${retryQueue}`, async () => (await queueDepth(retryQueue)) === 1);
    return { taskId, retryQueue, retryDelayMs: retryDelayMs! };
  }

  test("when a task is in RETRY, then its job sits in the retry queue for its wait and no worker holds it", async () => {
    const { taskId, retryQueue, retryDelayMs } = await taskWaitingToRetry();
    assert.ok(retryDelayMs >= 30_000 && retryDelayMs <= 60_000, `delay ${retryDelayMs} within [30000, 60000]`);
    const task = await stack.db.task.findUniqueOrThrow({ where: { id: taskId } });
    assert.ok(
      task.retryAt && task.retryAt.getTime() > Date.now(),
      "the task says when it is due, and that is still ahead",
    );
    assert.equal(await queueDepth(q), 0);
    const lookedAt = Date.now();

    const worker = await waitFor("a heartbeat after the retry was scheduled", async () => {
      const { body } = await stack.http().get("/api/workers").expect(200);
      const seen = body.workers.find((w: { lastSeen: string }) => Date.parse(w.lastSeen) > lookedAt);
      return seen as { inFlight: number } | undefined;
    });
    assert.equal(worker.inFlight, 0, "the worker holds nothing while the job waits");
    const { body: overview } = await stack.http().get("/api/queue").expect(200);
    assert.deepEqual(
      { ready: overview.ready, unacked: overview.unacked, retrying: overview.retrying },
      { ready: 0, unacked: 0, retrying: 1 },
    );
    assert.equal(
      (await stack.db.task.findUniqueOrThrow({ where: { id: taskId } })).state,
      "RETRY",
      "still waiting when we looked",
    );
    assert.equal(await queueDepth(retryQueue), 1);

    // The wait is over: the task is due, as time would make it, and the job goes back to the
    // work queue, as its expiry would send it (a job that comes back early is not run).
    await stack.db.task.update({ where: { id: taskId }, data: { retryAt: new Date(Date.now() - 1) } });
    assert.equal(await endRetryWaits(retryQueue, q), 1);
    const done = await waitForTaskState(stack.db, taskId, FINISHED);
    assert.equal(done.state, "SUCCESS");
    assert.deepEqual(
      (await attemptsOf(stack, taskId)).map((r) => r.outcome),
      ["RETRY", "SUCCESS"],
    );
    assert.equal(await retryDepth(stack), 0);
  });

  test("when a task waiting to retry is cancelled, then its job comes back from the retry queue and is acked without running", async () => {
    const { taskId, retryQueue } = await taskWaitingToRetry();
    const requestsBefore = stack.fake.requests;
    const skippedBefore = stack.workers[0]!.counters.skipped;

    const { body } = await stack
      .http()
      .post(`/api/tasks/${taskId}/cancel`)
      .set("Content-Type", "application/json")
      .expect(200);
    assert.equal(body.state, "REVOKED");
    assert.equal(body.retryAt, null);

    assert.equal(await endRetryWaits(retryQueue, q), 1);
    await waitFor(
      "the worker to ack the returning job",
      () => stack.workers[0]!.counters.skipped === skippedBefore + 1,
    );
    assert.equal(await retryDepth(stack), 0);
    assert.equal(await queueDepth(q), 0);
    assert.equal(await queueDepth(`${q}.dead`), 0);
    assert.equal(stack.fake.requests, requestsBefore, "dog.ceo was not asked again");
    const row = await stack.db.task.findUniqueOrThrow({ where: { id: taskId } });
    assert.equal(row.state, "REVOKED");
    assert.deepEqual(
      (await attemptsOf(stack, taskId)).map((r) => r.outcome),
      ["RETRY"],
    );
  });
});

describe("cancelling a task", () => {
  let stack: Stack;
  let q: string;
  let lateWorker: Awaited<ReturnType<typeof startWorker>> | undefined;
  before(async () => {
    stack = await startStack({ workers: 0 });
    q = stack.config.queueName;
  });
  after(async () => {
    await lateWorker?.stop();
    await stack?.stop();
  });

  test("when a pending task is cancelled through the API, then it is REVOKED at once", async () => {
    const taskId = await submitViaApi(stack, { breed: "pug", limit: 3 });
    const res = await stack
      .http()
      .post(`/api/tasks/${taskId}/cancel`)
      .set("Content-Type", "application/json")
      .expect(200);
    assert.equal(res.body.id, taskId);
    assert.equal(res.body.state, "REVOKED");
    assert.equal(res.body.cancellable, false);
    const row = await stack.db.task.findUniqueOrThrow({ where: { id: taskId } });
    assert.equal(row.state, "REVOKED");
    assert.ok(row.finishedAt);
  });

  test("when a person cancels with the task page's form, then it is REVOKED and they are sent back to the page", async () => {
    const taskId = await submitViaApi(stack, { breed: "pug", limit: 3 });
    const agent = stack.agent();
    const page = await agent.get(`/tasks/${taskId}`).expect(200);
    assert.match(page.text, /id="cancel-form"/);
    const res = await agent
      .post(`/tasks/${taskId}/cancel`)
      .type("form")
      .send({ _csrf: csrfTokenFrom(page.text) })
      .expect(303);
    assert.equal(res.headers.location, `/tasks/${taskId}`);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id: taskId } })).state, "REVOKED");
    const reloaded = await agent.get(`/tasks/${taskId}`).expect(200);
    assert.match(reloaded.text, /REVOKED/);
    assert.doesNotMatch(reloaded.text, /id="cancel-form"/);
  });

  test("when the form is posted without a CSRF token, then nothing is cancelled", async () => {
    const taskId = await submitViaApi(stack, { breed: "pug", limit: 1 });
    await stack.http().post(`/tasks/${taskId}/cancel`).type("form").send({}).expect(403);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id: taskId } })).state, "PENDING");
    // tidy: leave no job to run
    await stack.http().post(`/api/tasks/${taskId}/cancel`).set("Content-Type", "application/json").expect(200);
  });

  test("when a worker later receives a cancelled task's job, then it acks it without running it", async () => {
    // No worker while the tasks are cancelled, and only this test's jobs in the queue.
    await lateWorker?.stop();
    lateWorker = undefined;
    await purgeQueue(q);
    const revoked: string[] = [];
    for (let i = 0; i < 3; i++) {
      const taskId = await submitViaApi(stack, { breed: "pug", limit: 2 });
      await stack.http().post(`/api/tasks/${taskId}/cancel`).set("Content-Type", "application/json").expect(200);
      revoked.push(taskId);
    }
    assert.equal(await queueDepth(q), revoked.length, "the revoked jobs are still queued");
    const requestsBefore = stack.fake.requests;

    lateWorker = await startWorker(stack.config, createLogger(stack.config.logLevel, "late-worker"));
    await waitFor("the worker to ack every revoked job", () => lateWorker!.counters.skipped === revoked.length);
    await waitFor("the work queue to drain", async () => (await queueDepth(q)) === 0);

    assert.equal(lateWorker.counters.failed, 0);
    assert.equal(await queueDepth(`${q}.dead`), 0);
    assert.equal(stack.fake.requests, requestsBefore, "dog.ceo was not asked");
    for (const id of revoked) {
      const row = await stack.db.task.findUniqueOrThrow({ where: { id } });
      assert.equal(row.state, "REVOKED");
      assert.equal(row.startedAt, null);
      assert.equal(await stack.db.attempt.count({ where: { taskId: id } }), 0);
      const { body } = await stack.http().get(`/api/tasks/${id}`).expect(200);
      assert.equal(body.task.state, "REVOKED");
      assert.deepEqual(body.attempts, []);
    }
  });

  test("when a finished task is cancelled, then the API answers 409 and the task stays SUCCESS", async () => {
    lateWorker ??= await startWorker(stack.config, createLogger(stack.config.logLevel, "late-worker"));
    const taskId = await submitViaApi(stack, { breed: "pug", limit: 1 });
    assert.equal((await waitForTaskState(stack.db, taskId, FINISHED)).state, "SUCCESS");
    const res = await stack
      .http()
      .post(`/api/tasks/${taskId}/cancel`)
      .set("Content-Type", "application/json")
      .expect(409)
      .expect("Content-Type", /json/);
    assert.equal(res.body.error.code, "conflict");
    assert.match(res.body.error.message, /is SUCCESS/);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id: taskId } })).state, "SUCCESS");
  });

  test("when an unknown task is cancelled, then the API answers 404", async () => {
    const res = await stack
      .http()
      .post(`/api/tasks/${randomUUID()}/cancel`)
      .set("Content-Type", "application/json")
      .expect(404)
      .expect("Content-Type", /json/);
    assert.equal(res.body.error.code, "not_found");
  });
});
