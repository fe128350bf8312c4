// Dead letters that went out of date: a letter whose task was sent again (a retry by hand,
// a failure group's retry) or finished well since goes with the retry, or is marked settled
// and removed in one step; "why" is the error of the run it died after; the counts agree.
// Real web, worker, RabbitMQ and stand-in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

interface Letter {
  key: string;
  taskId: string | null;
  error: string | null;
  settled: boolean;
}

describe("dead letters that went out of date", () => {
  let stack: Stack;
  let dead: string;
  before(async () => {
    stack = await startStack({ workers: 1, env: { RETRY_MAX_ATTEMPTS: "1" } });
    dead = `${stack.config.queueName}.dead`;
    await waitFor("the web to reach the broker", async () => (await stack.http().get("/readyz")).status === 200);
  });
  after(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: object = {}) =>
    stack.http().post(path).set("Content-Type", "application/json").send(body);
  const letters = async (): Promise<{ total: number; settled: number; letters: Letter[] }> =>
    (await stack.http().get("/api/dead-letters").expect(200)).body;

  /** Tasks whose only attempt failed, each with its dead letter. */
  async function deadTasks(n: number): Promise<string[]> {
    const before = await queueDepth(dead);
    stack.fake.failNext("http500", n);
    const ids: string[] = [];
    for (let i = 0; i < n; i++)
      ids.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
    for (const id of ids) await waitForTaskState(stack.db, id, ["FAILURE"]);
    await waitFor(`${n} dead letters`, async () => (await queueDepth(dead)) === before + n);
    return ids;
  }

  async function clear(): Promise<void> {
    const { total } = await letters();
    if (total > 0) await post("/api/dead-letters/discard", { expected: total }).expect(200);
  }

  test("when a failure group is retried, then its dead letters go with it and the counts agree", async () => {
    await clear();
    const ids = await deadTasks(3);
    const { groups } = (await stack.http().get("/api/failures").expect(200)).body;
    const group = groups.find((g: { count: number }) => g.count === 3);
    assert.ok(group, "one group of 3 failures");
    assert.equal(
      (await post("/api/failures/retry", { fingerprint: group.fingerprint, expected: 3 }).expect(200)).body.retried,
      3,
    );
    assert.equal(await queueDepth(dead), 0, "no letter stays beside tasks sent again");
    for (const id of ids) await waitForTaskState(stack.db, id, ["SUCCESS"]);
    assert.equal(
      await stack.db.task.count({ where: { state: "FAILURE" } }),
      (await letters()).total,
      "as many letters as failures",
    );
  });

  test("when a task is retried by hand, then its dead letter goes", async () => {
    await clear();
    const [id] = await deadTasks(1);
    await post(`/api/tasks/${id}/retry`).expect(202);
    assert.equal(await queueDepth(dead), 0);
    await waitForTaskState(stack.db, id!, ["SUCCESS"]);
  });

  test("when the dead letters are shown, then why says the error of the run the letter died after, not only 'rejected'", async () => {
    await clear();
    const [id] = await deadTasks(1);
    const task = await stack.db.task.findUniqueOrThrow({ where: { id: id! } });
    assert.ok(task.error);
    const [letter] = (await letters()).letters;
    assert.equal(letter!.error, task.error);
    const page = (await stack.http().get("/dead-letters").expect(200)).text;
    const row = page.slice(page.indexOf(`data-key="${letter!.key}"`));
    const why = /data-label="Why">([\s\S]*?)<\/td>/.exec(row)?.[1] ?? "";
    assert.ok(
      why.includes(
        task.error.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;"),
      ),
      `why shows the error: ${why}`,
    );
  });

  test("when letters went out of date another way, then they are marked settled, go in one step, and requeue all removes them instead of keeping them", async () => {
    await clear();
    // A letter left from before retries took letters along, or from a retry while the broker was away.
    const [settled, failed] = await deadTasks(2);
    await stack.db.task.update({ where: { id: settled! }, data: { state: "SUCCESS", error: null } });
    const shown = await letters();
    assert.equal(shown.settled, 1);
    assert.deepEqual(
      shown.letters.map((l) => [l.taskId, l.settled]).sort(),
      [
        [settled, true],
        [failed, false],
      ].sort(),
    );
    const page = (await stack.http().get("/dead-letters").expect(200)).text;
    assert.match(page, /Discard 1 settled/);

    assert.deepEqual((await post("/api/dead-letters/requeue", { expected: 2 }).expect(200)).body, {
      requeued: 1,
      settled: 1,
      kept: 0,
      dryRun: false,
    });
    assert.equal(await queueDepth(dead), 0);
    await waitForTaskState(stack.db, failed!, ["SUCCESS"]);

    const [again] = await deadTasks(1);
    await stack.db.task.update({ where: { id: again! }, data: { state: "SUCCESS", error: null } });
    assert.deepEqual((await post("/api/dead-letters/discard-settled").expect(200)).body, { removed: 1 });
    assert.equal(await queueDepth(dead), 0);
  });
});
