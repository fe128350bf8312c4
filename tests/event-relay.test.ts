// Other processes' events reach a web's hub only while a browser watches (task events
// cost the broker and the web for every job); heartbeats always. On the real RabbitMQ.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { EventHub, type NumberedEvent } from "../lib/live/eventHub.ts";
import { relayEvents } from "../lib/live/eventRelay.ts";
import { createLogger } from "../lib/platform/logger.ts";
import { WorkerRegistry } from "../lib/monitor/workerRegistry.ts";
import { Broker } from "../tasks/queue.ts";
import { heartbeat } from "./support/fakes.ts";
import { AMQP_URL, deleteQueues, waitFor } from "./support/stack.ts";

const logger = createLogger("silent", "test");
const queueName = `gendog.test.${randomBytes(4).toString("hex")}`;
const retry = { baseMs: 50, maxMs: 400 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the event relay of a web", () => {
  const web = new Broker({ url: AMQP_URL, queueName, retry, logger });
  const worker = new Broker({ url: AMQP_URL, queueName, retry, logger });
  const hub = new EventHub();
  const workers = new WorkerRegistry();
  let relay: Awaited<ReturnType<typeof relayEvents>>;
  const connected = (broker: Broker) => new Promise<void>((resolve) => broker.onConnected(resolve));
  const taskEvent = (id: string) => ({ type: "resync", id });

  before(async () => {
    relay = await relayEvents({ broker: web, hub, workers, logger }, 200);
    const up = Promise.all([connected(web), connected(worker)]);
    await Promise.all([web.start(), worker.start()]);
    await up;
  });
  after(async () => {
    await relay.stop();
    await Promise.all([web.close(), worker.close()]);
    await deleteQueues(queueName, retry);
  });

  test("when no browser watches, task events are not heard, but heartbeats are", async () => {
    const before = hub.lastId;
    worker.publishEvent("task.resync", taskEvent("unwatched"));
    worker.publishEvent("worker.heartbeat", heartbeat("w1"));
    await waitFor("the heartbeat", () => workers.list().length === 1, 5000);
    await sleep(200);
    assert.equal(hub.lastId, before);
  });

  test("when a browser starts watching, task events are heard once that is in place, and stop a while after it leaves", async () => {
    const heard: NumberedEvent[] = [];
    const leave = hub.subscribe((event) => heard.push(event));
    await hub.whenLive();
    worker.publishEvent("task.resync", taskEvent("watched"));
    await waitFor("the event to be heard", () => heard.length === 1, 5000);

    const epoch = hub.epoch;
    leave();
    await waitFor("the relay to stop hearing task events", () => hub.epoch !== epoch, 5000);
    const last = hub.lastId;
    await sleep(100);
    worker.publishEvent("task.resync", taskEvent("after"));
    await sleep(300);
    assert.equal(hub.lastId, last, "nothing heard after the last watcher left");
  });

  test("when a task event finds no listener, then its publisher makes none for a second, then asks again; while a browser watches, it keeps making them", async () => {
    // The test before left the relay not hearing task events: nothing is bound for them.
    worker.publishEvent("task.resync", taskEvent("nobody"));
    await waitFor("the broker to return it", () => !worker.taskEventsHeard, 5000);
    const quiet = Date.now();
    await waitFor("the quiet to end", () => worker.taskEventsHeard, 5000);
    assert.ok(Date.now() - quiet >= 900, `quiet for about a second (${Date.now() - quiet} ms)`);

    const leave = hub.subscribe(() => {});
    try {
      await hub.whenLive();
      worker.publishEvent("task.resync", taskEvent("watched again"));
      await sleep(300);
      assert.equal(worker.taskEventsHeard, true, "a bound queue takes it: nothing comes back");
    } finally {
      leave();
    }
  });
});
