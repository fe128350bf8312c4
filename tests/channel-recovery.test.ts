// The broker can close a channel while the connection stays up (someone deletes a queue
// or an exchange in the management UI). The queue layer must build itself again.
import { after, before, test } from "node:test";
import { UNHEARD_QUIET_MS } from "../lib/live/events.ts";
import assert from "node:assert/strict";
import amqplib from "amqplib";
import { AMQP_URL, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

let stack: Stack;
before(async () => {
  stack = await startStack({ workers: 1 });
});
after(async () => {
  await stack?.stop();
});

async function onBroker(action: (channel: amqplib.Channel) => Promise<unknown>) {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    await action(await connection.createChannel());
  } finally {
    await connection.close();
  }
}

async function submitAndFinish(breed: string) {
  const res = await stack.http().post("/api/tasks").send({ breed, limit: 2 }).expect(202);
  return waitForTaskState(stack.db, res.body.id, ["SUCCESS", "FAILURE"], 20_000);
}

test("when the work queue is deleted under a running worker, the queue comes back and jobs still run", async () => {
  assert.equal((await submitAndFinish("pug")).state, "SUCCESS");
  await onBroker((channel) => channel.deleteQueue(stack.config.queueName));

  // The consumer was cancelled; web and worker rebuild their connections and declare it again.
  await waitFor(
    "the work queue to be declared again with a consumer",
    async () => {
      const res = await stack.http().get("/api/queue");
      return res.status === 200 && res.body.consumers === 1;
    },
    20_000,
  );
  assert.equal((await submitAndFinish("beagle")).state, "SUCCESS");
});

test("when the events exchange is deleted, the next publish on it makes the connection rebuild, the exchange is declared again and live events flow again", async () => {
  // The web's last task events went unheard (no page is open), so it makes none for a while:
  // once that is over, its next one is the first publish on the deleted exchange.
  await new Promise((resolve) => setTimeout(resolve, UNHEARD_QUIET_MS + 100));
  await onBroker((channel) => channel.deleteExchange(`${stack.config.queueName}.events`));
  // The next event published on the deleted exchange closes the channel (404); recovery declares it again.
  const task = await submitAndFinish("husky");
  assert.equal(task.state, "SUCCESS");
  await waitFor(
    "the web to see the worker's heartbeats again",
    async () => {
      const res = await stack.http().get("/api/workers").expect(200);
      return res.body.workers.some(
        (w: { alive: boolean; lastSeen: string }) => w.alive && Date.parse(w.lastSeen) > Date.now() - 2500,
      );
    },
    20_000,
  );
  assert.equal((await stack.http().get("/readyz")).status, 200);
  // throws (404) if it was not declared again
  await onBroker((channel) => channel.checkExchange(`${stack.config.queueName}.events`));
  assert.equal((await submitAndFinish("kelpie")).state, "SUCCESS");
});
