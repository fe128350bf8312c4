// Retrying what failed, from the API and the monitor's pages: one FAILURE or REVOKED task,
// or a group of failures that share an error, confirmed by the count a dry run showed.
// A retried task gets a new budget of attempts; its old attempts stay, and who and when
// are recorded. Through the real web, worker, broker and the dog.ceo stand-in.
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { csrfTokenFrom, startStack, waitForTaskState, type Stack } from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const basic = (password: string, user = "admin") => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const MAX_ATTEMPTS = 2;

describe("retrying what failed", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      workers: 1,
      env: { ADMIN_PASSWORD: PASSWORD, RETRY_MAX_ATTEMPTS: String(MAX_ATTEMPTS) },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: object = {}, password: string | null = PASSWORD) => {
    const req = stack.http().post(path).set("Content-Type", "application/json");
    return (password ? req.set("Authorization", basic(password, "ops")) : req).send(body);
  };

  /** A task that used up its attempts against a dog.ceo answering 500 (or the status asked for). */
  async function failedTask(kind: "http500" | "badJson" = "http500"): Promise<string> {
    stack.fake.failNext(kind, MAX_ATTEMPTS);
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["FAILURE"]);
    return body.id;
  }

  test("when a failed task is retried through the API, then it runs again with a new budget, keeps its old attempts and records who asked", async () => {
    const id = await failedTask();
    const res = await post(`/api/tasks/${id}/retry`).expect(202);
    assert.equal(res.body.retriable, false);
    assert.match(res.body.retriedBy, /^ops from /);
    await waitForTaskState(stack.db, id, ["SUCCESS"]);
    const { body } = await stack.http().get(`/api/tasks/${id}`).expect(200);
    assert.deepEqual(
      body.attempts.map((a: { number: number; outcome: string }) => [a.number, a.outcome]),
      [
        [1, "RETRY"],
        [2, "FAILURE"],
        [3, "SUCCESS"],
      ],
    );
    assert.equal(body.task.photoCount, 2);
    assert.equal(body.task.error, null);
    assert.ok(body.task.retriedAt);
  });

  test("when a retried task fails again, then it had a whole new budget of attempts, not what was left of the old one", async () => {
    const id = await failedTask();
    stack.fake.failNext("http500", MAX_ATTEMPTS);
    await post(`/api/tasks/${id}/retry`).expect(202);
    await waitForTaskState(stack.db, id, ["FAILURE"]);
    const task = await stack.db.task.findUniqueOrThrow({ where: { id } });
    assert.equal(task.attemptCount, 2 * MAX_ATTEMPTS);
    assert.match(task.error ?? "", new RegExp(`^gave up after ${MAX_ATTEMPTS} attempts`));
  });

  test("when a task cannot be retried, then the API says why and changes nothing", async () => {
    const id = await failedTask();
    await post(`/api/tasks/${id}/retry`, {}, null).expect(401);
    await post(`/api/tasks/${id}/retry`, {}, "not the password at all").expect(401);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "FAILURE");

    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["SUCCESS"]);
    const refused = await post(`/api/tasks/${body.id}/retry`).expect(409);
    assert.match(refused.body.error.message, /is SUCCESS; only FAILURE or REVOKED tasks can be retried/);
    await post("/api/tasks/00000000-0000-4000-8000-000000000000/retry").expect(404);
    assert.equal(
      await stack.db.outboxMessage.count({ where: { taskId: body.id } }),
      1,
      "no new job for a task that was not retried",
    );
  });

  test("when a group of failures is retried, then a dry run counts it first and a stale count changes nothing", async () => {
    // This test's failures are the only ones where dog.ceo sent bad JSON (the earlier tests met a 500): a group of their own.
    const ids = [await failedTask("badJson"), await failedTask("badJson"), await failedTask("badJson")];
    const { body: listed } = await stack.http().get("/api/failures").expect(200);
    const group = (listed.groups as { fingerprint: string; count: number }[]).find((g) =>
      /not JSON/.test(g.fingerprint),
    )!;
    assert.equal(group.count, 3, JSON.stringify(listed.groups));
    assert.match(group.fingerprint, /^gave up after # attempts: /);

    const dry = await post("/api/failures/retry", { fingerprint: group.fingerprint }).expect(200);
    assert.deepEqual([dry.body.matched, dry.body.retried, dry.body.dryRun], [3, 0, true]);
    const stale = await post("/api/failures/retry", { fingerprint: group.fingerprint, expected: 2 }).expect(409);
    assert.deepEqual([stale.body.error.code, stale.body.error.matched], ["count_changed", 3]);
    assert.equal(await stack.db.task.count({ where: { id: { in: ids }, state: "FAILURE" } }), 3, "nothing was retried");
    await post("/api/failures/retry", { fingerprint: group.fingerprint, expected: 3 }, null).expect(401);

    const done = await post("/api/failures/retry", { fingerprint: group.fingerprint, expected: 3 }).expect(200);
    assert.deepEqual([done.body.matched, done.body.retried, done.body.dryRun], [3, 3, false]);
    for (const id of ids) await waitForTaskState(stack.db, id, ["SUCCESS"]);
    const tasks = await stack.db.task.findMany({ where: { id: { in: ids } } });
    assert.ok(tasks.every((t) => t.retriedBy?.startsWith("ops from ") && t.attemptBase === MAX_ATTEMPTS));
  });

  test("when a person retries from the pages, then the task page offers it for a failed task and tells what happened", async () => {
    const id = await failedTask();
    const agent = stack.agent();
    const page = await agent.get(`/tasks/${id}`).expect(200);
    assert.match(page.text, /id="retry-form"/);
    const token = csrfTokenFrom(page.text);
    await agent.post(`/tasks/${id}/retry`).type("form").send({ _csrf: token }).expect(401);
    const sent = await agent
      .post(`/tasks/${id}/retry`)
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: token })
      .expect(303);
    assert.equal(sent.headers.location, `/tasks/${id}?retry=sent`);
    await waitForTaskState(stack.db, id, ["SUCCESS"]);
    const shown = await agent.get(sent.headers.location).expect(200);
    assert.match(shown.text, /Sent again with a new retry budget/);
    assert.match(shown.text, /id="retried"[\s\S]*by admin from /);
    assert.doesNotMatch(shown.text, /id="retry-form"/, "a task that succeeded offers no retry");

    const again = await agent
      .post(`/tasks/${id}/retry`)
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: token })
      .expect(303);
    assert.equal(again.headers.location, `/tasks/${id}?retry=too-late`);
    assert.match((await agent.get(again.headers.location).expect(200)).text, /Not retried: it is SUCCESS now/);
  });

  test("when the monitor's group button was pressed for a count that changed, then nothing is retried and the page says the new count", async () => {
    await stack.db.task.updateMany({ where: { state: "FAILURE" }, data: { state: "SUCCESS" } });
    const first = await failedTask();
    const agent = stack.agent();
    const page = await agent.get("/tasks").expect(200);
    const fingerprint = /name="fingerprint" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(fingerprint, "the monitor lists the group");
    assert.match(page.text, /Retry these 1</);
    await failedTask(); // a second failure joins the group after the page was shown
    const token = csrfTokenFrom(page.text);
    const form = {
      _csrf: token,
      fingerprint: fingerprint
        .replace(/&#39;/g, "'")
        .replace(/&amp;/g, "&")
        .replace(/&quot;/g, '"'),
      expected: "1",
    };
    const stale = await agent
      .post("/failures/retry")
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send(form)
      .expect(303);
    assert.match(stale.headers.location ?? "", /changed=2&expected=1&at=failures#monitor-notice$/);
    assert.match(
      (await agent.get(stale.headers.location).expect(200)).text,
      /Nothing was done: you confirmed 1, but 2 match now/,
    );
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id: first } })).state, "FAILURE");

    const done = await agent
      .post("/failures/retry")
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ ...form, expected: "2" })
      .expect(303);
    assert.match((await agent.get(done.headers.location).expect(200)).text, /Sent 2 failed tasks again/);
    await waitForTaskState(stack.db, first, ["SUCCESS"]);
  });
});

describe("when one group of failures is retried three times at once, each with the count it showed", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(async () => {
    await stack?.stop();
  });

  test("then one retries the whole group and the other two answer 409, as for any count that changed", async () => {
    const tag = randomBytes(6).toString("hex").replace(/\d/g, "x"); // a group of its own: digits would be blanked
    const error = `gave up after 5 attempts: dog.ceo answered 500 (${tag})`;
    const count = 3000; // fifteen batches
    await stack.db.task.createMany({
      data: Array.from({ length: count }, () => ({
        id: randomUUID(),
        breed: "pug",
        limit: 1,
        state: "FAILURE" as const,
        error,
      })),
    });
    const { body: listed } = await stack.http().get("/api/failures").expect(200);
    const group = listed.groups.find((g: { example: string }) => g.example === error);
    assert.equal(group.count, count);
    const retry = () =>
      stack
        .http()
        .post("/api/failures/retry")
        .set("Content-Type", "application/json")
        .set("Authorization", basic(PASSWORD))
        .send({ fingerprint: group.fingerprint, expected: count });
    const answers = await Promise.all([retry(), retry(), retry()]);
    const done = answers.filter((a) => a.status === 200);
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 409, 409], JSON.stringify(answers.map((a) => a.body)));
    assert.deepEqual([done[0]!.body.retried, done[0]!.body.dryRun], [count, false]);
    for (const stale of answers.filter((a) => a.status === 409)) assert.equal(stale.body.error.code, "count_changed");
    assert.equal(await stack.db.task.count({ where: { error, state: "FAILURE" } }), 0);
    assert.equal(
      await stack.db.task.count({ where: { retriedBy: { not: null }, state: "PENDING", attemptBase: 0 } }),
      count,
    );
  });
});
