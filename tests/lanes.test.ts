// A person's submit is never stuck behind a bulk retry: reruns (tasks sent again by hand)
// travel in a lane of their own (Q.bulk), and a worker gives people's jobs its next free
// slot first. Retries and dead letters keep working in the reruns' lane. Real web, worker,
// RabbitMQ, database and the dog.ceo stand-in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createLogger } from "../lib/platform/logger.ts";
import { startWorker } from "../tasks/worker.ts";
import { bulkQueueName } from "../tasks/broker/topology.ts";
import { queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const auth = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString("base64")}`;
const RERUNS = 200;

describe("people's submits and bulk reruns", () => {
  let stack: Stack;
  before(async () => {
    // No worker yet: each test starts the one it needs, with a concurrency of 1.
    stack = await startStack({
      workers: 0,
      env: { ADMIN_PASSWORD: PASSWORD, WORKER_CONCURRENCY: "1", RETRY_MAX_ATTEMPTS: "2" },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: object = {}) =>
    stack.http().post(path).set("Content-Type", "application/json").set("Authorization", auth).send(body);

  /** `n` FAILURE tasks sharing one error, sent again as a group: their jobs queue in the reruns' lane. */
  async function queueReruns(n: number, error: string): Promise<string[]> {
    const ids = Array.from({ length: n }, () => randomUUID());
    await stack.db.task.createMany({
      data: ids.map((id) => ({
        id,
        breed: "pug",
        limit: 1,
        state: "FAILURE" as const,
        attemptCount: 1,
        error,
        finishedAt: new Date(),
      })),
    });
    const { groups } = (await stack.http().get("/api/failures?limit=100").expect(200)).body;
    const group = groups.find((g: { example: string }) => g.example === error);
    assert.equal(
      (await post("/api/failures/retry", { fingerprint: group.fingerprint, expected: n }).expect(200)).body.retried,
      n,
    );
    return ids;
  }

  test(`when ${RERUNS} reruns are queued, then a person's task submitted after them starts before they are drained`, async () => {
    const reruns = await queueReruns(RERUNS, "dog.ceo answered 503 (a bulk retry)");
    await waitFor(
      "the reruns in their lane",
      async () => (await queueDepth(bulkQueueName(stack.config.queueName))) === RERUNS,
    );
    const person = (
      await stack.http().post("/api/tasks").send({ breed: "hound", subBreed: "afghan", limit: 1 }).expect(202)
    ).body.id;
    await waitFor("the person's job in the work queue", async () => (await queueDepth(stack.config.queueName)) === 1);

    const worker = await startWorker(stack.config, createLogger("silent", "test"));
    try {
      const done = await waitForTaskState(stack.db, person, ["SUCCESS"], 30_000);
      const startedBefore = await stack.db.task.count({
        where: { id: { in: reruns }, startedAt: { lt: done.startedAt! } },
      });
      // One worker, one slot: at most the rerun it held when the person's job came waits ahead of it.
      assert.ok(startedBefore <= 2, `${startedBefore} reruns started before the person's task`);
      // Its heartbeats still count as its (jobs in hand at most its concurrency, or the web drops them as forged).
      const [seen] = await waitFor(
        "the worker's heartbeat",
        async () => (await stack.http().get("/api/workers").expect(200)).body.workers as { inFlight: number }[],
      );
      assert.ok(seen!.inFlight <= 1, `in flight ${seen!.inFlight}`);
      assert.ok(
        (await queueDepth(bulkQueueName(stack.config.queueName))) > 0 || startedBefore < RERUNS,
        "the reruns were not drained first",
      );
      await waitFor(
        "every rerun done",
        async () => (await stack.db.task.count({ where: { id: { in: reruns }, state: "SUCCESS" } })) === RERUNS,
        120_000,
      );
      const overview = (await stack.http().get("/api/queue").expect(200)).body;
      assert.deepEqual([overview.ready, overview.reruns], [0, 0]);
    } finally {
      await worker.stop();
    }
  });

  test("when a rerun fails for a while, then it is retried in the reruns' lane, and dead-lettered when its attempts run out", async () => {
    const worker = await startWorker(stack.config, createLogger("silent", "test"));
    try {
      // Set before the rerun is sent: the worker may reach dog.ceo before the retry call answers.
      stack.fake.failNext("http500", 1);
      const [retried] = await queueReruns(1, "dog.ceo answered 500 (retried in its lane)");
      const task = await waitForTaskState(stack.db, retried!, ["SUCCESS", "FAILURE"], 20_000);
      assert.equal(task.state, "SUCCESS");
      const runs = await stack.db.attempt.findMany({ where: { taskId: retried! }, orderBy: { number: "asc" } });
      assert.deepEqual(
        runs.map((r) => r.outcome),
        ["RETRY", "SUCCESS"],
      );

      const dead = `${stack.config.queueName}.dead`;
      const before = await queueDepth(dead);
      stack.fake.failNext("http500", 2);
      const [failing] = await queueReruns(1, "dog.ceo answered 500 (dead-lettered from its lane)");
      assert.equal((await waitForTaskState(stack.db, failing!, ["SUCCESS", "FAILURE"], 20_000)).state, "FAILURE");
      await waitFor("its dead letter", async () => (await queueDepth(dead)) === before + 1);
      const letters = (await stack.http().get("/api/dead-letters").expect(200)).body.letters as { taskId: string }[];
      assert.ok(letters.some((l) => l.taskId === failing));
    } finally {
      await worker.stop();
    }
  });
});
