// QUEUE_TYPE=quorum: the work and dead-letter queues are quorum queues of their own name,
// jobs run and retry as on classic queues, and a message that keeps coming back is
// dead-lettered by RabbitMQ after DELIVERY_LIMIT deliveries.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import amqplib from "amqplib";
import { DELIVERY_LIMIT } from "../tasks/broker/topology.ts";
import {
  AMQP_URL,
  publishRaw,
  queueDepth,
  startStack,
  waitFor,
  waitForTaskState,
  type Stack,
} from "./support/stack.ts";

describe("when QUEUE_TYPE=quorum", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { QUEUE_TYPE: "quorum" } });
  });
  after(() => stack.stop());

  test("then the work and dead-letter queues are quorum queues named QUEUE_NAME.quorum", async () => {
    assert.match(stack.config.queueName, /\.quorum$/);
    await waitFor("the web to reach RabbitMQ", async () => (await stack.http().get("/readyz")).status === 200, 20_000);
    const connection = await amqplib.connect(AMQP_URL);
    try {
      const queue = stack.config.queueName;
      const dlx = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": `${queue}.dead`,
        "x-delivery-limit": DELIVERY_LIMIT,
      };
      for (const [name, args] of [
        [queue, dlx],
        [`${queue}.dead`, {}],
      ] as const) {
        // Declaring it again as classic, all else equal, must be refused for its type.
        const channel = await connection.createChannel();
        channel.on("error", () => {});
        await assert.rejects(
          channel.assertQueue(name, { durable: true, arguments: { ...args, "x-queue-type": "classic" } }),
          /PRECONDITION_FAILED.*x-queue-type/,
        );
      }
    } finally {
      await connection.close().catch(() => {});
    }
  });

  test("then a job runs, retries after a transient failure, and succeeds", async () => {
    stack.fake.failNext("http500", 1);
    const res = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 3 }).expect(202);
    const task = await waitForTaskState(stack.db, res.body.id, ["SUCCESS", "FAILURE"], 15_000);
    assert.equal(task.state, "SUCCESS");
    assert.equal(task.attemptCount, 2);
    assert.equal(task.photoCount, 3);
  });

  test("then a message redelivered more than the delivery limit is dead-lettered by the broker", async () => {
    for (const worker of stack.workers) await worker.stop();
    stack.workers.length = 0;
    const queue = stack.config.queueName;
    await publishRaw(queue, JSON.stringify({ poison: true }));
    const connection = await amqplib.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      for (let i = 0; i <= DELIVERY_LIMIT; i++) {
        const msg = await waitFor(
          "the message to come back",
          async () => (await channel.get(queue)) || undefined,
          5000,
        );
        channel.nack(msg, false, true);
      }
      await waitFor(
        "the message to reach the dead-letter queue",
        async () => (await queueDepth(`${queue}.dead`)) === 1,
        5000,
      );
      assert.equal(await queueDepth(queue), 0);
    } finally {
      await connection.close().catch(() => {});
    }
  });
});
