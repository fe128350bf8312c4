// Searching all of history from the monitor and the API: error text, a time range, totals.
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, type Stack } from "./support/stack.ts";

describe("searching tasks", () => {
  let stack: Stack;
  // Tasks of this test's own breed, so nothing else matches its searches.
  const breed = "whippet";
  const ids: Record<string, string> = {};
  before(async () => {
    stack = await startStack({ workers: 0 });
    const rows = [
      { key: "old500", state: "FAILURE", error: "gave up after 5 attempts: dog.ceo answered 500 Internal Server Error", createdAt: "2026-01-10T12:00:00Z" },
      { key: "new500", state: "FAILURE", error: "gave up after 5 attempts: dog.ceo answered 500 Internal Server Error", createdAt: "2026-03-05T08:30:00Z" },
      { key: "timeout", state: "FAILURE", error: "gave up after 5 attempts: dog.ceo did not answer within 10 s (headers timeout)", createdAt: "2026-03-06T09:00:00Z" },
      { key: "ok", state: "SUCCESS", error: null, createdAt: "2026-03-07T10:00:00Z" },
    ] as const;
    for (const row of rows) {
      ids[row.key] = randomUUID();
      await stack.db.task.create({
        data: { id: ids[row.key]!, breed, limit: 1, state: row.state, error: row.error, createdAt: new Date(row.createdAt), finishedAt: new Date(row.createdAt) },
      });
    }
  });
  after(async () => {
    await stack?.stop();
  });

  const search = async (query: string) => (await stack.http().get(`/api/tasks?breed=${breed}&${query}`).expect(200)).body as { tasks: { id: string }[]; total: number };

  test("when the API is asked for tasks whose error says something, then it lists exactly those, with their total", async () => {
    const found = await search("error=500");
    assert.deepEqual(
      found.tasks.map((t) => t.id),
      [ids.new500, ids.old500],
    );
    assert.equal(found.total, 2);
    assert.deepEqual(
      (await search("error=headers%20timeout")).tasks.map((t) => t.id),
      [ids.timeout],
    );
    // % would match every task: refused, not run.
    const wildcard = await stack.http().get(`/api/tasks?breed=${breed}&error=100%25`).expect(400);
    assert.equal(wildcard.body.error.field, "error");
  });

  test("when the API is asked for a time range, then it lists the tasks created in it, and pages keep the total", async () => {
    const march = await search("from=2026-03-01&to=2026-03-07");
    assert.deepEqual(
      march.tasks.map((t) => t.id),
      [ids.timeout, ids.new500],
    );
    const page = await search("from=2026-01-01T00:00Z&limit=1");
    assert.equal(page.tasks.length, 1);
    assert.equal(page.total, 4);
    for (const [query, field] of [
      ["from=yesterday", "from"],
      ["to=2026-13-45", "to"],
      [`error=${"x".repeat(101)}`, "error"],
    ]) {
      const res = await stack.http().get(`/api/tasks?${query}`).expect(400);
      assert.equal(res.body.error.field, field, query);
    }
  });

  test("when the monitor is searched, then it says how many match and shows totals by state as the database holds them", async () => {
    const page = (await stack.http().get(`/tasks?breed=${breed}&error=500`).expect(200)).text;
    assert.match(page, /id="tasks-total">2 tasks match this search</);
    assert.equal([...page.matchAll(/<tr data-task-id="([^"]+)"/g)].length, 2);
    for (const state of ["FAILURE", "SUCCESS", "PENDING"] as const) {
      const shown = new RegExp(`data-total="${state}">(\\d+)<`).exec(page)?.[1];
      assert.equal(Number(shown), await stack.db.task.count({ where: { state } }), state);
    }
    assert.equal(Number(/data-total="all">(\d+)</.exec(page)?.[1]), await stack.db.task.count());
  });
  test("when the list is read oldest first and paged both ways, then every page holds the tasks it should, forwards and back", async () => {
    const order = [ids.old500, ids.new500, ids.timeout, ids.ok];
    const first = (await stack.http().get(`/api/tasks?breed=${breed}&order=oldest&limit=2`).expect(200)).body;
    assert.deepEqual(
      first.tasks.map((t: { id: string }) => t.id),
      order.slice(0, 2),
    );
    assert.equal(first.prevCursor, null, "nothing before the first page");
    const second = (await stack.http().get(`/api/tasks?breed=${breed}&order=oldest&limit=2&cursor=${first.nextCursor}`).expect(200)).body;
    assert.deepEqual(
      second.tasks.map((t: { id: string }) => t.id),
      order.slice(2),
    );
    assert.equal(second.nextCursor, null);
    const back = (await stack.http().get(`/api/tasks?breed=${breed}&order=oldest&limit=2&before=${second.prevCursor}`).expect(200)).body;
    assert.deepEqual(
      back.tasks.map((t: { id: string }) => t.id),
      order.slice(0, 2),
    );
    assert.deepEqual([back.prevCursor, back.nextCursor], [null, order[1]]);
    // Newest first, one at a time, back from the oldest.
    const newest = (await stack.http().get(`/api/tasks?breed=${breed}&limit=1&before=${ids.old500}`).expect(200)).body;
    assert.deepEqual(
      newest.tasks.map((t: { id: string }) => t.id),
      [ids.new500],
    );
    assert.equal(newest.prevCursor, ids.new500);
    await stack.http().get(`/api/tasks?order=sideways`).expect(400);

    const page = (await stack.http().get(`/tasks?breed=${breed}&order=oldest&cursor=${ids.old500}`).expect(200)).text;
    assert.match(page, /aria-sort="ascending"/);
    assert.match(page, new RegExp(`id="prev-tasks" href="/tasks\\?breed=${breed}&amp;before=${ids.new500}&amp;order=oldest"`));
    assert.match(page, /These are the newest tasks\./);
  });
});
