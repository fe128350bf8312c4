// The web's outbox relay (tasks/outbox.ts) against the real RabbitMQ and a real store: a submit is
// answered once the broker confirms its job, and writing "sent" afterwards must never hold the next
// submits' publishes back (on PostgreSQL that write can wait for a worker's claim of the same task).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { pino } from "pino";
import { createLifecycle } from "../lib/lifecycle/lifecycle.ts";
import { OutboxRelay } from "../tasks/outbox.ts";
import { Broker } from "../tasks/queue.ts";
import { freshStore, type TestStore } from "./support/store.ts";
import { AMQP_URL, deleteQueues, waitFor } from "./support/stack.ts";

const retry = { baseMs: 100, maxMs: 400 };
const queueName = `gendog.test.${randomBytes(4).toString("hex")}`;
const logger = pino({ level: "silent" });
let store: TestStore;
let broker: Broker;

before(async () => {
  store = await freshStore();
  broker = new Broker({ url: AMQP_URL, queueName, retry, logger });
  await broker.start();
  await waitFor("the broker to connect", () => broker.isConnected(), 10_000);
});

after(async () => {
  await broker.close();
  await deleteQueues(queueName, retry);
  await store.drop();
});

test(
  "submits keep being confirmed while the writes that mark earlier jobs sent are slow",
  { timeout: 30_000 },
  async () => {
    const lifecycle = createLifecycle(store, { emit: () => {} });
    // The database is slow to take "sent" (a claim holds the rows): every such write waits until let go.
    let letGo!: () => void;
    const slow = new Promise<void>((resolve) => (letGo = resolve));
    const relay = new OutboxRelay({
      lifecycle: { ...lifecycle, markQueued: (jobs) => slow.then(() => lifecycle.markQueued(jobs)) },
      broker,
      logger,
    });
    relay.start();
    try {
      // More submits, one at a time, than the relay publishes batches at once (16).
      const jobs = [];
      for (let i = 0; i < 24; i++) {
        const { job } = await lifecycle.accept({ id: randomUUID(), breed: "pug", subBreed: null, limit: 1 }, "{}");
        jobs.push(job);
      }
      const answers = await Promise.all(jobs.map((job) => relay.dispatch(job, 5_000)));
      assert.deepEqual(
        answers.map((a) => a.queued),
        jobs.map(() => true),
        "each submit is told its job is queued",
      );
      assert.equal(await store.outboxBacklog(), jobs.length, "none is written sent yet");
      letGo();
      await waitFor("every job to be written sent", async () => (await store.outboxBacklog()) === 0, 10_000);
      for (const job of jobs) assert.ok((await store.task(job.taskId))?.queuedAt, "and each task queued");
    } finally {
      letGo();
      await relay.stop();
    }
  },
);
