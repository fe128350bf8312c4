// Stopping a running task (Flower's revoke with terminate), from the API and the task's
// page: the task and its run end REVOKED saying who stopped it, and the worker that holds
// it abandons its dog.ceo call at once, told by a signed control message. A stop that
// comes after the task finished changes nothing and says so. Real web, worker, RabbitMQ,
// database and the dog.ceo stand-in (which hangs the call, so only an abort ends it).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import amqplib from "amqplib";
import { controlKey, signStop } from "../lib/monitor/controlMessages.ts";
import { eventsExchangeName } from "../tasks/broker/topology.ts";
import {
  AMQP_URL,
  csrfTokenFrom,
  queueDepth,
  startStack,
  waitFor,
  waitForTaskState,
  type Stack,
} from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const auth = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString("base64")}`;

describe("stopping a running task", () => {
  let stack: Stack;
  before(async () => {
    // A hung call would last a minute: only the stop's abort ends it within the tests' waits.
    stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD, DOG_API_TIMEOUT_MS: "60000" } });
  });
  after(async () => {
    await stack?.stop();
  });

  const post = (path: string) =>
    stack.http().post(path).set("Content-Type", "application/json").set("Authorization", auth).send({});

  /** A task whose worker is waiting on a dog.ceo call that never answers. */
  async function hungTask(): Promise<string> {
    stack.fake.failNext("hang");
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["STARTED"]);
    return body.id;
  }

  test("when a running task is stopped through the API, then it ends REVOKED, its attempt says who stopped it, and its worker lets go of it", async () => {
    const id = await hungTask();
    const skipped = stack.workers[0]!.counters.skipped;
    await stack.http().post(`/api/tasks/${id}/stop`).set("Content-Type", "application/json").send({}).expect(401);
    const res = await post(`/api/tasks/${id}/stop`).expect(200);
    assert.deepEqual([res.body.state, res.body.workerTold], ["REVOKED", true]);
    assert.match(res.body.error, /^stopped by ops from .* while running$/);
    // The worker abandoned the hung call (a minute long otherwise) and acked the job.
    await waitFor("the worker let go of the task", () => stack.workers[0]!.counters.skipped === skipped + 1, 20_000);
    const detail = (await stack.http().get(`/api/tasks/${id}`).expect(200)).body;
    assert.equal(detail.task.state, "REVOKED");
    assert.deepEqual(
      detail.attempts.map((a: { outcome: string; error: string }) => [
        a.outcome,
        /^stopped by ops from .* while running$/.test(a.error),
      ]),
      [["REVOKED", true]],
    );
    assert.equal(detail.photos.length, 0);
    assert.equal(await queueDepth(stack.config.queueName), 0, "the job was acked, not sent again");
    assert.equal(await queueDepth(`${stack.config.queueName}.dead`), 0, "nor dead-lettered");
    // And the worker is free for the next one.
    const next = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id;
    await waitForTaskState(stack.db, next, ["SUCCESS"]);
    const audit = (await stack.http().get("/api/audit?action=stop").expect(200)).body;
    assert.equal(audit.entries[0].target, id);
    assert.match(audit.entries[0].actor, /^ops from /);
  });

  test("when a stop arrives after the task finished, then nothing changes and the answer says why", async () => {
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["SUCCESS"]);
    const before = (await stack.http().get("/api/audit").expect(200)).body.total;
    const res = await post(`/api/tasks/${body.id}/stop`).expect(409);
    assert.match(res.body.error.message, /is SUCCESS; it finished before the stop arrived/);
    const task = await stack.db.task.findUniqueOrThrow({ where: { id: body.id }, include: { attempts: true } });
    assert.deepEqual([task.state, task.attempts.map((a) => a.outcome)], ["SUCCESS", ["SUCCESS"]]);
    assert.equal(
      (await stack.http().get("/api/audit").expect(200)).body.total,
      before,
      "nothing done, nothing recorded",
    );
  });

  test("when a person stops a running task from its page, then the page says it stopped and shows it REVOKED", async () => {
    const id = await hungTask();
    const agent = stack.agent();
    const page = await agent.get(`/tasks/${id}`).expect(200);
    assert.match(page.text, new RegExp(`<form method="post" action="/tasks/${id}/stop" id="stop-form"`));
    const told = await agent
      .post(`/tasks/${id}/stop`)
      .set("Authorization", auth)
      .type("form")
      .send({ _csrf: csrfTokenFrom(page.text) })
      .expect(303);
    assert.equal(told.headers.location, `/tasks/${id}?stop=stopped`);
    const shown = (await agent.get(told.headers.location).expect(200)).text;
    assert.match(shown, /Stopped: its worker was told to abandon the call to dog\.ceo/);
    assert.doesNotMatch(shown, /id="stop-form"/, "no stop button on a stopped task");
    assert.match(shown, /stopped by ops from .* while running/);
    // Pressed again from the old page: nothing to stop, and it says so.
    const again = await agent
      .post(`/tasks/${id}/stop`)
      .set("Authorization", auth)
      .type("form")
      .send({ _csrf: csrfTokenFrom(page.text) })
      .expect(303);
    assert.match(
      (await agent.get(again.headers.location).expect(200)).text,
      /Not stopped: it is REVOKED now, no longer running/,
    );
    await waitFor(
      "the worker let go of it",
      async () => (await stack.http().get("/api/workers").expect(200)).body.workers[0]?.inFlight === 0,
      20_000,
    );
  });

  test("when someone on the broker sends a stop signed with another key, or a signed stop with its task swapped, then the worker keeps running the task", async () => {
    const id = await hungTask();
    const other = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id;
    const skipped = stack.workers[0]!.counters.skipped;
    const wrongKey = controlKey({ controlSecret: "someone else's secret, 32 characters or more" })!;
    const swapped = { ...signStop(controlKey({ adminPassword: PASSWORD })!, other), task: id };
    const connection = await amqplib.connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      for (const body of [signStop(wrongKey, id), swapped, { task: id }])
        channel.publish(eventsExchangeName(stack.config.queueName), "control.stop", Buffer.from(JSON.stringify(body)), {
          contentType: "application/json",
        });
      await channel.waitForConfirms();
    } finally {
      await connection.close().catch(() => {});
    }
    // Two heartbeats later, anything published before has been heard.
    const seen = new Set<string>();
    await waitFor(
      "two more heartbeats",
      async () => seen.add((await stack.http().get("/api/workers").expect(200)).body.workers[0]?.lastSeen).size >= 3,
    );
    assert.equal(stack.workers[0]!.counters.skipped, skipped, "the worker still holds the task");
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "STARTED");
    await post(`/api/tasks/${id}/stop`).expect(200);
    await waitFor("the worker let go of it", () => stack.workers[0]!.counters.skipped === skipped + 1, 20_000);
  });
});
