// Who may stop the work: a worker pauses or resumes only for a control message signed with
// the key web and workers share (CONTROL_SECRET, or one derived from ADMIN_PASSWORD), fresh
// and not seen before; the web refuses a malformed `worker`; with no key, pausing is off.
// Real web and worker, the machine's RabbitMQ, a publisher of the test's own on the app's
// events exchange.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import amqplib from "amqplib";
import { ConfigError, loadConfig } from "../lib/platform/config.ts";
import { controlKey, signControl } from "../lib/monitor/controlMessages.ts";
import { eventsExchangeName } from "../tasks/broker/topology.ts";
import { AMQP_URL, startStack, waitFor, type Stack } from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const auth = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString("base64")}`;

/** Publishes each message on the stack's events exchange, as anyone with access to the broker could. */
async function publish(stack: Stack, messages: [routingKey: string, body: Buffer | string | object][]): Promise<void> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    for (const [key, body] of messages) {
      const content = Buffer.isBuffer(body)
        ? body
        : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      channel.publish(eventsExchangeName(stack.config.queueName), key, content, { contentType: "application/json" });
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close().catch(() => {});
  }
}

async function workers(stack: Stack): Promise<{ id: string; paused: boolean; lastSeen: string }[]> {
  return (await stack.http().get("/api/workers").expect(200)).body.workers;
}

/**
 * Whether the worker is paused, as its heartbeats say two beats from now: long enough for
 * anything published before to have been heard and the beat after it sent.
 */
async function pausedAfterTwoBeats(stack: Stack): Promise<boolean> {
  const seen = new Set<string>();
  const last = await waitFor("two more heartbeats", async () => {
    const [worker] = await workers(stack);
    if (worker) seen.add(worker.lastSeen);
    return seen.size >= 3 && worker;
  });
  return last.paused;
}

describe("control messages with ADMIN_PASSWORD set", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD } });
    await waitFor("the worker heard from", async () => (await workers(stack)).length === 1);
  });
  after(() => stack?.stop());

  test("when someone on the broker sends control.pause unsigned, signed with another key, stale, or aimed oddly, then the worker keeps working", async () => {
    const id = stack.workers[0]!.id;
    const otherKey = controlKey({ controlSecret: "someone else's secret, 32 characters or more" })!;
    const key = controlKey({ adminPassword: PASSWORD })!;
    const fresh = signControl(key, "pause", undefined);
    await publish(stack, [
      // the signature covers what it asks (first: a resume after a pause would hide the pause)
      ["control.resume", fresh],
      ["control.pause", {}],
      ["control.pause", { worker: id }],
      ...[1, null, "", [], {}, true].map((worker) => ["control.pause", { worker }] as [string, object]),
      ["control.pause", "not json"],
      ["control.pause", signControl(otherKey, "pause", undefined)],
      ["control.pause", signControl(key, "pause", undefined, Date.now() - 5 * 60_000)],
      ["control.pause", signControl(key, "pause", undefined, Date.now() + 5 * 60_000)],
      ["control.pause", { ...fresh, worker: "someone-else" }], // the signature covers whom it is for
      ["control.pause", { ...fresh, at: fresh.at + 1 }], // and when it was made
    ]);
    assert.equal(await pausedAfterTwoBeats(stack), false);
  });

  test("when the web's own signed pause is heard again later, then the replay does nothing", async () => {
    const connection = await amqplib.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
      await channel.bindQueue(queue, eventsExchangeName(stack.config.queueName), "control.pause");
      const post = (path: string) =>
        stack.http().post(path).set("Content-Type", "application/json").set("Authorization", auth).send({});
      await post("/api/workers/pause").expect(202);
      await waitFor("paused", async () => (await workers(stack))[0]?.paused === true);
      const captured = await waitFor(
        "the web's pause on the exchange",
        async () => (await channel.get(queue, { noAck: true })) || undefined,
      );
      await post("/api/workers/resume").expect(202);
      await waitFor("running again", async () => (await workers(stack))[0]?.paused === false);

      await publish(stack, [["control.pause", captured.content]]);
      assert.equal(await pausedAfterTwoBeats(stack), false, "a replayed pause is ignored");
    } finally {
      await connection.close().catch(() => {});
    }
  });

  test("when the monitor is asked to pause a worker named by anything but its id, then it answers 400 and sends nothing", async () => {
    for (const worker of [1, null, "", [], {}, true, "x".repeat(101), "bad id!"]) {
      const res = await stack
        .http()
        .post("/api/workers/pause")
        .set("Content-Type", "application/json")
        .set("Authorization", auth)
        .send({ worker });
      assert.equal(res.status, 400, JSON.stringify(worker));
      assert.equal(res.body.error.field, "worker");
    }
    assert.equal(await pausedAfterTwoBeats(stack), false);
  });
});

describe("control messages made before a worker started", () => {
  let stack: Stack | undefined;
  after(() => stack?.stop());

  test("when a signed pause captured before a worker started is replayed to it while still fresh, then the worker keeps working", async () => {
    const captured = signControl(controlKey({ adminPassword: PASSWORD })!, "pause", undefined);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // more than the clock skew a worker allows
    stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD } });
    await waitFor("the worker heard from", async () => (await workers(stack!)).length === 1);
    await publish(stack, [["control.pause", captured]]);
    assert.equal(await pausedAfterTwoBeats(stack), false);
  });
});

describe("control messages with no key configured", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1 });
    await waitFor("the worker heard from", async () => (await workers(stack)).length === 1);
  });
  after(() => stack?.stop());

  test("when neither ADMIN_PASSWORD nor CONTROL_SECRET is set, then the web says pausing is off and a worker obeys no control message", async () => {
    const res = await stack
      .http()
      .post("/api/workers/pause")
      .set("Content-Type", "application/json")
      .send({})
      .expect(409);
    assert.equal(res.body.error.code, "control_off");
    assert.match(res.body.error.message, /CONTROL_SECRET/);
    await publish(stack, [["control.pause", {}]]);
    assert.equal(await pausedAfterTwoBeats(stack), false);
  });
});

describe("control messages with CONTROL_SECRET and no password", () => {
  test("when CONTROL_SECRET is shorter than 32 characters, then the process does not start and the error names it", () => {
    assert.throws(
      () => loadConfig({ CONTROL_SECRET: "too short" }),
      (err: unknown) => err instanceof ConfigError && err.variable === "CONTROL_SECRET",
    );
    assert.equal(loadConfig({}).controlSecret, undefined, "unset unless set");
  });

  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1, env: { CONTROL_SECRET: "a shared secret of at least 32 characters" } });
    await waitFor("the worker heard from", async () => (await workers(stack)).length === 1);
  });
  after(() => stack?.stop());

  test("when a person on this machine pauses and resumes, then the worker does", async () => {
    await stack.http().post("/api/workers/pause").set("Content-Type", "application/json").send({}).expect(202);
    await waitFor("paused", async () => (await workers(stack))[0]?.paused === true);
    await stack.http().post("/api/workers/resume").set("Content-Type", "application/json").send({}).expect(202);
    await waitFor("running again", async () => (await workers(stack))[0]?.paused === false);
  });
});
