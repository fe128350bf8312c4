// Dead letters you can see, and the work queue's purge: read without losing a message,
// requeue (the task runs again) or discard one or all, and purge what waits, each bulk
// action only for the count a dry run showed. Real web, worker, RabbitMQ and stand-in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  csrfTokenFrom,
  publishRaw,
  queueDepth,
  startStack,
  waitFor,
  waitForTaskState,
  type Stack,
} from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const basic = (password: string) => `Basic ${Buffer.from(`ops:${password}`).toString("base64")}`;

function client(stack: Stack) {
  return (path: string, body: object = {}, password: string | null = PASSWORD) => {
    const req = stack.http().post(path).set("Content-Type", "application/json");
    return (password ? req.set("Authorization", basic(password)) : req).send(body);
  };
}

describe("dead letters", () => {
  let stack: Stack;
  let post: ReturnType<typeof client>;
  let dead: string;
  before(async () => {
    stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD, RETRY_MAX_ATTEMPTS: "1" } });
    post = client(stack);
    dead = `${stack.config.queueName}.dead`;
  });
  after(async () => {
    await stack?.stop();
  });

  /** A task whose only attempt failed: its job is dead-lettered. */
  async function deadTask(): Promise<string> {
    stack.fake.failNext("http500", 1);
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["FAILURE"]);
    await waitFor("its dead letter", async () =>
      (await stack.http().get("/api/dead-letters").expect(200)).body.letters.some(
        (l: { taskId: string }) => l.taskId === body.id,
      ),
    );
    return body.id;
  }

  const letterOf = async (taskId: string) =>
    (await stack.http().get("/api/dead-letters").expect(200)).body.letters.find(
      (l: { taskId: string }) => l.taskId === taskId,
    );

  test("when the dead letters are read, then each shows its task and why it died, and reading twice loses nothing", async () => {
    const id = await deadTask();
    await publishRaw(stack.config.queueName, "this is not json");
    await waitFor("the poison message dead-lettered", async () => (await queueDepth(dead)) === 2);
    const first = (await stack.http().get("/api/dead-letters").expect(200)).body;
    const second = (await stack.http().get("/api/dead-letters").expect(200)).body;
    assert.deepEqual(second, first);
    assert.equal(first.total, 2);
    const [letter, poison] = first.letters;
    assert.deepEqual(
      {
        taskId: letter.taskId,
        state: letter.task.state,
        why: letter.deathReason,
        from: letter.deathQueue,
        attempt: letter.attempt,
      },
      { taskId: id, state: "FAILURE", why: "rejected", from: stack.config.queueName, attempt: 1 },
    );
    assert.ok(letter.deadAt && JSON.parse(letter.body).taskId === id);
    assert.deepEqual([poison.taskId, poison.task, poison.body], [null, null, "this is not json"]);
    assert.equal(await queueDepth(dead), 2, "still in the queue");

    await post(`/api/dead-letters/${poison.key}/requeue`).expect(409);
    await post(`/api/dead-letters/${poison.key}/discard`, {}, null).expect(401);
    assert.deepEqual((await post(`/api/dead-letters/${poison.key}/discard`).expect(200)).body, { removed: 1 });
    await post(`/api/dead-letters/${poison.key}/discard`).expect(404);
    assert.equal(await queueDepth(dead), 1);
  });

  test("when a dead letter is requeued, then its task runs again with a new budget and the letter is gone", async () => {
    const id = await deadTask();
    const letter = await letterOf(id);
    const res = await post(`/api/dead-letters/${letter.key}/requeue`).expect(200);
    assert.equal(res.body.task.id, id);
    await waitForTaskState(stack.db, id, ["SUCCESS"]);
    assert.equal(await letterOf(id), undefined);
    const task = await stack.db.task.findUniqueOrThrow({ where: { id } });
    assert.deepEqual([task.attemptCount, task.attemptBase, task.retriedBy?.startsWith("ops from ")], [2, 1, true]);
    await post(`/api/dead-letters/${letter.key}/requeue`).expect(404);
  });

  test("when all dead letters are requeued or discarded, then a dry run counts them and a stale count changes nothing", async () => {
    await post("/api/dead-letters/discard", {
      expected: (await post("/api/dead-letters/discard").expect(200)).body.matched,
    }).expect(200);
    const ids = [await deadTask(), await deadTask()];
    // A copy of a letter whose task then succeeds: settled, it says nothing any more.
    const { body: done } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    await waitForTaskState(stack.db, done.id, ["SUCCESS"]);
    await publishRaw(dead, JSON.stringify({ taskId: done.id, breed: "pug", limit: 1 }));

    const dry = await post("/api/dead-letters/requeue").expect(200);
    assert.deepEqual(dry.body, { matched: 3, dryRun: true });
    const stale = await post("/api/dead-letters/requeue", { expected: 2 }).expect(409);
    assert.deepEqual([stale.body.error.code, stale.body.error.matched], ["count_changed", 3]);
    assert.equal(await queueDepth(dead), 3);

    const requeued = await post("/api/dead-letters/requeue", { expected: 3 }).expect(200);
    // The settled copy goes with them, not sent again (it was kept before issue 23).
    assert.deepEqual(requeued.body, { requeued: 2, settled: 1, kept: 0, dryRun: false });
    for (const id of ids) await waitForTaskState(stack.db, id, ["SUCCESS"]);
    assert.equal(await queueDepth(dead), 0);
    // A letter that names no task cannot be sent again: it stays.
    await publishRaw(dead, "names no task");
    assert.deepEqual((await post("/api/dead-letters/requeue", { expected: 1 }).expect(200)).body, {
      requeued: 0,
      settled: 0,
      kept: 1,
      dryRun: false,
    });
    assert.equal(await queueDepth(dead), 1);
    await post("/api/dead-letters/discard", { expected: 2 }).expect(409);
    assert.deepEqual((await post("/api/dead-letters/discard", { expected: 1 }).expect(200)).body, {
      removed: 1,
      dryRun: false,
    });
    assert.equal(await queueDepth(dead), 0);
  });

  test("when a person uses the dead letters page, then it lists them with their tasks and its buttons need the password", async () => {
    const id = await deadTask();
    const agent = stack.agent();
    const page = await agent.get("/dead-letters").expect(200);
    assert.match(page.text, new RegExp(`href="/tasks/${id}"`));
    assert.match(page.text, /Requeue all 1</);
    const key = /data-key="([0-9a-f]{16})"/.exec(page.text)![1]!;
    const token = csrfTokenFrom(page.text);
    await agent.post(`/dead-letters/${key}/requeue`).type("form").send({ _csrf: token }).expect(401);
    const sent = await agent
      .post(`/dead-letters/${key}/requeue`)
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: token })
      .expect(303);
    assert.equal(sent.headers.location, "/dead-letters?requeued=1");
    assert.match(
      (await agent.get(sent.headers.location).expect(200)).text,
      /Requeued 1 dead letter: their tasks run again/,
    );
    await waitForTaskState(stack.db, id, ["SUCCESS"]);
    const again = await agent
      .post(`/dead-letters/${key}/requeue`)
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: token })
      .expect(303);
    assert.match(
      (await agent.get(again.headers.location).expect(200)).text,
      /that message is not in the queue any more/,
    );
  });
});

describe("purging the work queue", () => {
  let stack: Stack;
  let post: ReturnType<typeof client>;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
    post = client(stack);
  });
  after(async () => {
    await stack?.stop();
  });

  test("when the waiting jobs are purged, then a dry run counts them, a stale count changes nothing, and their tasks are cancelled", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
    await waitFor("three jobs queued", async () => (await queueDepth(stack.config.queueName)) === 3);
    assert.deepEqual((await post("/api/queue/purge").expect(200)).body, { matched: 3, dryRun: true });
    await post("/api/queue/purge", { expected: 3 }, "wrong password, twelve").expect(401);
    assert.equal((await post("/api/queue/purge", { expected: 2 }).expect(409)).body.error.matched, 3);
    assert.equal(await queueDepth(stack.config.queueName), 3);

    const agent = stack.agent();
    const page = await agent.get("/tasks").expect(200);
    assert.match(page.text, /Purge 3 waiting/);
    const purged = await agent
      .post("/queue/purge")
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: csrfTokenFrom(page.text), expected: "3" })
      .expect(303);
    assert.match(
      (await agent.get(purged.headers.location).expect(200)).text,
      /Purged 3 jobs from the work queue; 3 tasks cancelled/,
    );
    assert.equal(await queueDepth(stack.config.queueName), 0);
    assert.deepEqual(
      (await stack.db.task.findMany({ where: { id: { in: ids } } })).map((t) => t.state),
      ["REVOKED", "REVOKED", "REVOKED"],
    );
  });
});

describe("dead letters someone tampered with or reads in a loop", () => {
  let stack: Stack;
  let post: ReturnType<typeof client>;
  let dead: string;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
    post = client(stack);
    dead = `${stack.config.queueName}.dead`;
  });
  after(async () => {
    await stack?.stop();
  });

  test("when a letter carries an x-death time no date can hold, then the list, the page and the actions still answer", async () => {
    // 10^13 seconds: past the year 275,760, the last a JavaScript date can show.
    const death = {
      count: 1,
      reason: "rejected",
      queue: stack.config.queueName,
      exchange: "",
      "routing-keys": [stack.config.queueName],
      time: { "!": "timestamp", value: 1e13 },
    };
    await publishRaw(dead, "a letter from the far future", { "x-death": [death] });
    await waitFor("the letter in the dead-letter queue", async () => (await queueDepth(dead)) === 1);
    const { body } = await stack.http().get("/api/dead-letters").expect(200);
    assert.deepEqual(
      [body.total, body.letters[0].deadAt, body.letters[0].body],
      [1, null, "a letter from the far future"],
    );
    await stack.http().get("/dead-letters").expect(200);
    assert.deepEqual((await post(`/api/dead-letters/${body.letters[0].key}/discard`).expect(200)).body, { removed: 1 });
  });

  test("when someone lists the letters in a loop, then the admin's discard of one and of all still find them", async () => {
    for (let i = 0; i < 40; i++) await publishRaw(dead, `poison ${i}`);
    await waitFor("40 letters", async () => (await queueDepth(dead)) === 40);
    const { body } = await stack.http().get("/api/dead-letters?limit=1000").expect(200);
    const key = body.letters.find((l: { body: string }) => l.body === "poison 7").key;
    let looping = true;
    let reads = 0;
    // Six clients reading as fast as they are answered, bounded in count.
    const readers = Array.from({ length: 6 }, async () => {
      while (looping && reads < 5000) {
        await stack.http().get("/api/dead-letters?limit=1000").expect(200);
        reads += 1;
      }
    });
    try {
      await waitFor("the readers to get going", () => reads >= 12);
      assert.deepEqual((await post(`/api/dead-letters/${key}/discard`).expect(200)).body, { removed: 1 });
      assert.deepEqual((await post("/api/dead-letters/discard", { expected: 39 }).expect(200)).body, {
        removed: 39,
        dryRun: false,
      });
    } finally {
      looping = false;
      await Promise.all(readers);
    }
    assert.equal(await queueDepth(dead), 0);
  });
});
