// Paging through tasks while they change state: the cursor is a place in the order
// (newest first), so nothing is skipped or repeated when the cursor task moves on.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, type Stack } from "./support/stack.ts";

let stack: Stack;
before(async () => {
  stack = await startStack({ workers: 0 });
});
after(async () => {
  await stack?.stop();
});

test("when the cursor task leaves the filtered state between pages, the next page starts right after it", async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++)
    ids.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
  const newestFirst = [...ids].reverse();

  const first = (await stack.http().get("/api/tasks?state=PENDING&limit=2").expect(200)).body;
  assert.deepEqual(
    first.tasks.map((t: { id: string }) => t.id),
    newestFirst.slice(0, 2),
  );

  // The last task of the page is picked up by a worker before the person asks for more.
  await stack.db.task.update({ where: { id: first.nextCursor }, data: { state: "STARTED" } });
  const second = (await stack.http().get(`/api/tasks?state=PENDING&limit=2&cursor=${first.nextCursor}`).expect(200))
    .body;
  assert.deepEqual(
    second.tasks.map((t: { id: string }) => t.id),
    newestFirst.slice(2, 4),
  );
  const third = (await stack.http().get(`/api/tasks?state=PENDING&limit=2&cursor=${second.nextCursor}`).expect(200))
    .body;
  assert.deepEqual(
    third.tasks.map((t: { id: string }) => t.id),
    newestFirst.slice(4),
  );
  assert.equal(third.nextCursor, null);
});

test("when the cursor names no task, the API says the cursor is not valid", async () => {
  const res = await stack.http().get("/api/tasks?cursor=00000000-0000-4000-8000-000000000000").expect(400);
  assert.equal(res.body.error.field, "cursor");
});
