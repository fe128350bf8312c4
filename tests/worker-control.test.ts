// Pausing and resuming workers from the monitor: a control message on the events exchange;
// a paused worker finishes what it holds, takes nothing new, and says "paused" in its
// heartbeat until resumed. Real web, two workers, RabbitMQ and the stand-in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { csrfTokenFrom, queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const auth = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString("base64")}`;

describe("pausing and resuming workers", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 2, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: object = {}) =>
    stack.http().post(path).set("Content-Type", "application/json").set("Authorization", auth).send(body);
  const paused = async () =>
    Object.fromEntries(
      ((await stack.http().get("/api/workers").expect(200)).body.workers as { id: string; paused: boolean }[]).map(
        (w) => [w.id, w.paused],
      ),
    );
  const ids = () => stack.workers.map((w) => w.id);

  test("when every worker is paused, then submitted jobs wait in the queue until they are resumed", async () => {
    await waitFor("both workers heard from", async () => Object.keys(await paused()).length === 2);
    await stack.http().post("/api/workers/pause").set("Content-Type", "application/json").expect(401);
    assert.deepEqual((await post("/api/workers/pause").expect(202)).body, { action: "pause", worker: "all" });
    await waitFor("both paused", async () => Object.values(await paused()).every(Boolean));

    const tasks: string[] = [];
    for (let i = 0; i < 3; i++)
      tasks.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
    await waitFor("the jobs in the queue", async () => (await queueDepth(stack.config.queueName)) === 3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await queueDepth(stack.config.queueName), 3, "nobody took them");
    assert.equal(await stack.db.task.count({ where: { id: { in: tasks }, state: "PENDING" } }), 3);

    await post("/api/workers/resume").expect(202);
    for (const id of tasks) await waitForTaskState(stack.db, id, ["SUCCESS"]);
    await waitFor("both running again", async () => Object.values(await paused()).every((p) => !p));
  });

  test("when one worker is paused, then only it stops taking jobs, and an unknown worker is refused", async () => {
    const [first, second] = ids();
    await post("/api/workers/pause", { worker: first }).expect(202);
    await waitFor("the first paused", async () => (await paused())[first!] === true);
    assert.equal((await paused())[second!], false);
    const before = stack.workers[0]!.counters.done;
    const tasks: string[] = [];
    for (let i = 0; i < 4; i++)
      tasks.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
    for (const id of tasks) await waitForTaskState(stack.db, id, ["SUCCESS"]);
    assert.equal(stack.workers[0]!.counters.done, before, "the paused worker ran none of them");
    assert.equal(
      (await post("/api/workers/pause", { worker: "no-such-worker" }).expect(404)).body.error.code,
      "not_found",
    );
    await post("/api/workers/resume", { worker: first }).expect(202);
    await waitFor("the first running again", async () => (await paused())[first!] === false);
  });

  test("when a person pauses a worker from the monitor, then its panel says paused and offers to resume it", async () => {
    const [first] = ids();
    const agent = stack.agent();
    const page = await agent.get("/tasks").expect(200);
    const token = csrfTokenFrom(page.text);
    await agent.post("/workers/pause").type("form").send({ _csrf: token, worker: first }).expect(401);
    const told = await agent
      .post("/workers/pause")
      .set("Authorization", auth)
      .type("form")
      .send({ _csrf: token, worker: first })
      .expect(303);
    assert.match(
      (await agent.get(told.headers.location).expect(200)).text,
      new RegExp(`Told worker ${first} to pause`),
    );
    await waitFor("the first paused", async () => (await paused())[first!] === true);
    const shown = (await agent.get("/tasks").expect(200)).text;
    const panel = shown.slice(shown.indexOf(`data-worker-id="${first}"`));
    assert.match(panel.slice(0, 2000), /data-role="paused"[\s\S]*action="\/workers\/resume"/);
    await agent.post("/workers/resume").set("Authorization", auth).type("form").send({ _csrf: token }).expect(303);
    await waitFor("running again", async () => Object.values(await paused()).every((p) => !p));
  });
  test("when a person opens the workers page, then each worker is a row with its numbers, and pausing there comes back there", async () => {
    const [first, second] = ids();
    const agent = stack.agent();
    const page = await agent.get("/workers").expect(200);
    for (const id of [first, second])
      assert.match(page.text, new RegExp(`<tr data-worker-id="${id}" data-status="alive"`));
    assert.match(page.text, /<th class="has-text-right">Done \/ min<\/th>/);
    const told = await agent
      .post("/workers/pause")
      .set("Authorization", auth)
      .type("form")
      .send({ _csrf: csrfTokenFrom(page.text), worker: second, from: "workers" })
      .expect(303);
    assert.equal(told.headers.location, `/workers?paused=${second}`);
    await waitFor("the second paused", async () => (await paused())[second!] === true);
    const shown = (await agent.get(told.headers.location!).expect(200)).text;
    // The notice speaks of what this page has: a table of workers, no panel.
    const notice = /id="monitor-notice"[^>]*>([^<]*)</.exec(shown)?.[1] ?? "";
    assert.match(notice, new RegExp(`Told worker ${second} to pause`));
    assert.doesNotMatch(notice, /panel/);
    assert.match(
      shown.slice(shown.indexOf(`data-worker-id="${second}"`), shown.indexOf(`data-worker-id="${second}"`) + 2500),
      /data-role="paused"[\s\S]*action="\/workers\/resume"/,
    );
    await post("/api/workers/resume").expect(202);
    await waitFor("running again", async () => Object.values(await paused()).every((p) => !p));
  });
});
