// Retention: sent outbox rows and the attempts of tasks that finished long ago are
// deleted, in bounded batches; everything recent, unsent or unfinished stays, and tasks
// and photos always stay. On SQLite, and on PostgreSQL with TEST_DATABASE=postgres.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { openDatabase, type Db } from "../lib/store/db.ts";
import { createLifecycle, type Lifecycle } from "../lib/lifecycle/lifecycle.ts";
import { migrateIfNeeded } from "../lib/store/migrate.ts";
import { openStore, type TaskStore } from "../lib/store/index.ts";
import { freshDatabase, type TestDatabase } from "./support/database.ts";

const DAY = 24 * 60 * 60_000;
let database: TestDatabase;
let db: Db;
let store: TaskStore;
let lifecycle: Lifecycle;

before(async () => {
  database = await freshDatabase();
  await migrateIfNeeded(database.url);
  db = await openDatabase(database.url);
  store = await openStore(database.url);
  lifecycle = createLifecycle(store, { emit: () => {} });
});

after(async () => {
  await db.$disconnect();
  await store.close();
  await database.drop();
});

/**
 * A task in `state`, finished (or last changed) `daysAgo`, with one attempt, a photo and a sent (or unsent) outbox row.
 */
async function taskFrom(daysAgo: number, state: "SUCCESS" | "FAILURE" | "REVOKED" | "RETRY", sent = true) {
  const id = randomUUID();
  const at = new Date(Date.now() - daysAgo * DAY);
  const finished = state !== "RETRY";
  await db.task.create({
    data: {
      id,
      breed: "pug",
      limit: 1,
      state,
      attemptCount: 1,
      createdAt: at,
      finishedAt: finished ? at : null,
      photoCount: 1,
    },
  });
  await db.attempt.create({
    data: {
      taskId: id,
      number: 1,
      workerId: "w",
      startedAt: at,
      finishedAt: at,
      outcome: state === "RETRY" ? "RETRY" : state === "REVOKED" ? "LOST" : state,
    },
  });
  await db.outboxMessage.create({
    data: { taskId: id, body: "{}", createdAt: at, sentAt: sent ? at : null, tries: sent ? 1 : 0 },
  });
  const photo = await db.photo.create({
    data: { url: `https://images.dog.ceo/breeds/pug/${id}.jpg`, breed: "pug", createdAt: at },
  });
  await db.taskPhoto.create({ data: { taskId: id, photoId: photo.id, position: 0 } });
  return id;
}

test("when rows are older than the retention, sent outbox rows and finished tasks' attempts go, in batches; tasks, photos and everything recent, unsent or unfinished stay", async () => {
  const old = await Promise.all([
    taskFrom(40, "SUCCESS"),
    taskFrom(40, "FAILURE"),
    taskFrom(40, "REVOKED"),
    taskFrom(35, "SUCCESS"),
  ]);
  const recent = await taskFrom(5, "SUCCESS");
  const oldUnsent = await taskFrom(40, "SUCCESS", false);
  const oldUnfinished = await taskFrom(40, "RETRY");

  const pruned = await lifecycle.prune(30 * DAY, 2); // batches of 2: the loop must go round
  // Outbox: the four old rows and the running task's old sent row. Attempts: the four old
  // tasks' and the one whose job was never sent (the task finished, cancelled say).
  assert.deepEqual(pruned, { outbox: 5, attempts: 5 });

  for (const id of old) {
    assert.equal(await db.attempt.count({ where: { taskId: id } }), 0);
    assert.equal(await db.outboxMessage.count({ where: { taskId: id } }), 0);
  }
  assert.equal(await db.outboxMessage.count({ where: { taskId: oldUnsent } }), 1, "an unsent job is never deleted");
  assert.equal(
    await db.attempt.count({ where: { taskId: oldUnfinished } }),
    1,
    "a task still running keeps its attempts",
  );
  assert.equal(
    await db.outboxMessage.count({ where: { taskId: oldUnfinished } }),
    0,
    "its sent outbox row is old and goes",
  );
  assert.equal(await db.attempt.count({ where: { taskId: recent } }), 1);
  assert.equal(await db.outboxMessage.count({ where: { taskId: recent } }), 1);
  const everyTask = [...old, recent, oldUnsent, oldUnfinished];
  assert.equal(await db.task.count({ where: { id: { in: everyTask } } }), everyTask.length, "tasks stay");
  assert.equal(await db.taskPhoto.count({ where: { taskId: { in: everyTask } } }), everyTask.length, "photos stay");

  assert.deepEqual(await lifecycle.prune(30 * DAY, 2), { outbox: 0, attempts: 0 }, "a second run finds nothing");
});
