// The store's writes asked for together (in one turn of the event loop) go to the database
// as a group: on SQLite one transaction with a savepoint each (lib/store/sqlite/connection.ts), on PostgreSQL
// one multi-row statement or short transaction (lib/store/postgres/batch.ts). Each call must get
// the answer it would get alone. Runs on SQLite, and on PostgreSQL with TEST_DATABASE=postgres.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { openDatabase, type Db } from "../lib/store/db.ts";
import { migrateIfNeeded } from "../lib/store/migrate.ts";
import { openStore, type OpenRun, type TaskStore } from "../lib/store/index.ts";
import { freshDatabase, onPostgres, type TestDatabase } from "./support/database.ts";

let database: TestDatabase;
let db: Db;
let store: TaskStore;

before(async () => {
  database = await freshDatabase();
  await migrateIfNeeded(database.url);
  db = await openDatabase(database.url);
  store = await openStore(database.url);
});

after(async () => {
  await db.$disconnect();
  await store.close();
  await database.drop();
});

const newTask = (id = randomUUID()) => ({ id, breed: "pug", subBreed: null, limit: 3 });
const accept = (task: ReturnType<typeof newTask>) => store.accept(task, JSON.stringify({ taskId: task.id }), 30_000);
const claim = (taskId: string, workerId = "w1") => store.claim({ taskId, attempt: 1, redelivered: false, workerId });

test("accepts asked for together are each stored with their own job, and one that fails fails alone", async () => {
  const taken = newTask();
  await accept(taken);
  const [first, again, second] = await Promise.allSettled([accept(newTask()), accept(taken), accept(newTask())]);
  assert.equal(again!.status, "rejected", "an id already stored is refused");
  for (const result of [first!, second!]) {
    assert.equal(result.status, "fulfilled");
    const { task, job } = (result as PromiseFulfilledResult<Awaited<ReturnType<typeof accept>>>).value;
    assert.equal(task.state, "PENDING");
    assert.equal(job.taskId, task.id);
    assert.equal(job.body, JSON.stringify({ taskId: task.id }));
    assert.equal(job.attempt, 1);
    const stored = await db.outboxMessage.findMany({ where: { taskId: task.id } });
    assert.deepEqual(
      stored.map((m) => m.id),
      [job.id],
    );
  }
  assert.equal(await db.outboxMessage.count({ where: { taskId: taken.id } }), 1, "the refused accept added no job");
});

test("two claims of one task asked for together: one run, the other is skipped", async () => {
  const { task } = await accept(newTask());
  const claims = await Promise.all([claim(task.id, "w1"), claim(task.id, "w2")]);
  assert.deepEqual(claims.map((c) => c.kind).sort(), ["run", "skip"]);
  const attempts = await db.attempt.findMany({ where: { taskId: task.id } });
  assert.equal(attempts.length, 1, "one run recorded");
  assert.equal((await db.task.findUniqueOrThrow({ where: { id: task.id } })).attemptCount, 1);
});

test("claims asked for together each get their own answer: a run, a finished task, a missing one", async () => {
  const open = (await accept(newTask())).task;
  const done = (await accept(newTask())).task;
  const run = await claim(done.id);
  assert.equal(run.kind, "run");
  await store.succeed(run as Extract<typeof run, { kind: "run" }>, "pug", null, [], false);
  const [ran, skipped, missing] = await Promise.all([claim(open.id), claim(done.id), claim(randomUUID())]);
  assert.equal(ran.kind, "run");
  assert.equal((ran as Extract<typeof ran, { kind: "run" }>).number, 1);
  assert.deepEqual(skipped, { kind: "skip", state: "SUCCESS" });
  assert.deepEqual(missing, { kind: "missing" });
});

test("successes stored together each link their own photos in order, sharing photos once, and a stale run is skipped alone", async () => {
  const url = (n: number) => `https://images.dog.ceo/breeds/pug/group-${n}.jpg`;
  const tasks = await Promise.all([1, 2, 3].map(() => accept(newTask())));
  const runs: OpenRun[] = [];
  for (const { task } of tasks) runs.push((await claim(task.id)) as OpenRun);
  // The third task's run was taken over: a later run began (attemptCount 2), so its own run is stale.
  await db.task.update({ where: { id: runs[2]!.taskId }, data: { attemptCount: 2 } });
  const lists = [
    [url(1), url(2), url(3)],
    [url(3), url(1)],
    [url(4), url(5)],
  ];
  const results = await Promise.all(runs.map((run, i) => store.succeed(run, "pug", null, lists[i]!, i === 0)));
  assert.equal(results[2], undefined, "the stale run does not succeed");
  assert.deepEqual(
    results[0]!.photos!.map((p) => p.url),
    lists[0],
    "read back in order for a listening page",
  );
  assert.equal(results[1]!.photos, undefined);
  for (const i of [0, 1]) {
    const links = await db.taskPhoto.findMany({
      where: { taskId: runs[i]!.taskId },
      orderBy: { position: "asc" },
      include: { photo: true },
    });
    assert.deepEqual(
      links.map((l) => l.photo.url),
      lists[i],
    );
    assert.equal(results[i]!.task.state, "SUCCESS");
    assert.equal(results[i]!.task.photoCount, lists[i]!.length);
    const [attempt] = await db.attempt.findMany({ where: { id: runs[i]!.attemptId } });
    assert.equal(attempt!.outcome, "SUCCESS");
  }
  assert.equal(
    await db.photo.count({ where: { url: { in: [url(1), url(2), url(3)] } } }),
    3,
    "a shared photo is stored once",
  );
  assert.equal(await db.photo.count({ where: { url: { in: [url(4), url(5)] } } }), 0, "the stale run stored nothing");
  const stale = await db.attempt.findUniqueOrThrow({ where: { id: runs[2]!.attemptId } });
  assert.equal(stale.outcome, "SKIPPED");
  assert.equal((await db.task.findUniqueOrThrow({ where: { id: runs[2]!.taskId } })).state, "STARTED");
});

test(
  "a confirm that comes while a claim holds the task's row is not held up by it, and the claim stamps the task queued",
  { skip: !onPostgres && "row locks held by another connection are PostgreSQL's" },
  async () => {
    const { task, job } = await accept(newTask());
    // Another connection holds the row, as a worker's claim does between its statements.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM "Task" WHERE id = $1 FOR UPDATE`, [task.id]);
      const marked = await Promise.race([
        store.markSent([{ id: job.id, taskId: task.id }], false).then(() => "marked"),
        new Promise((resolve) => setTimeout(resolve, 3000, "held up")),
      ]);
      assert.equal(marked, "marked");
      const message = await db.outboxMessage.findUniqueOrThrow({ where: { id: job.id } });
      assert.ok(message.sentAt, "the job is marked sent");
      assert.equal(message.leaseUntil, null);
      assert.equal(
        (await db.task.findUniqueOrThrow({ where: { id: task.id } })).queuedAt,
        null,
        "the held row is left",
      );
    } finally {
      await holder.query("ROLLBACK");
      await holder.end();
    }
    const run = await claim(task.id);
    assert.equal(run.kind, "run");
    const claimed = await db.task.findUniqueOrThrow({ where: { id: task.id } });
    assert.ok(
      claimed.queuedAt && claimed.startedAt && claimed.queuedAt <= claimed.startedAt,
      "queued, not after started",
    );
  },
);
