// SQLite under load: the web reading and writing while three worker processes store
// photos into the same file. WAL and the busy timeout must keep every write waiting its
// turn instead of failing with SQLITE_BUSY.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { configEnv, spawnWorker, type ChildApp } from "./support/faults.ts";
import { startStack, waitFor, type Stack } from "./support/stack.ts";

let stack: Stack;
const children: ChildApp[] = [];

before(async () => {
  stack = await startStack({ workers: 0 });
  for (let i = 0; i < 3; i++) children.push(spawnWorker(configEnv(stack.config, { WORKER_CONCURRENCY: "8" })));
  await Promise.all(children.map((c) => c.waitForOutput(/connected to RabbitMQ/, 30_000)));
});

after(async () => {
  await Promise.all(children.map((c) => c.stop()));
  await stack?.stop();
});

test("when three workers store photos while the web is busy, every write lands and none fails with SQLITE_BUSY", async () => {
  const breeds = ["hound", "retriever", "terrier", "poodle", "bulldog", "spaniel"];
  const submits = Array.from({ length: 60 }, (_, i) =>
    stack
      .http()
      .post("/api/tasks")
      .send({ breed: breeds[i % breeds.length], limit: 50 })
      .expect(202)
      .then((res) => res.body.id as string),
  );
  // The web keeps reading (and the gallery's count and page queries) the whole time.
  let reading = true;
  let reads = 0;
  const reader = (async () => {
    while (reading) {
      await stack.http().get("/").expect(200);
      await stack.http().get("/api/tasks?limit=50").expect(200);
      reads += 2;
    }
  })();

  const ids = await Promise.all(submits);
  // Writes now take microseconds, so the tasks may finish within a few reads: keep reading until both are done.
  await waitFor(
    "all 60 tasks to finish",
    async () => reads > 10 && (await stack.db.task.count({ where: { state: { in: ["SUCCESS", "FAILURE"] } } })) === 60,
    90_000,
  );
  reading = false;
  await reader;

  const tasks = await stack.db.task.findMany({ where: { id: { in: ids } } });
  assert.deepEqual(
    tasks.filter((t) => t.state !== "SUCCESS").map((t) => `${t.id}: ${t.error}`),
    [],
  );
  // A database error would have sent the job round again: one attempt each means none happened.
  assert.deepEqual(
    tasks.filter((t) => t.attemptCount !== 1).map((t) => t.id),
    [],
  );
  for (const task of tasks)
    assert.equal(await stack.db.taskPhoto.count({ where: { taskId: task.id } }), task.photoCount);
  const logs = children.map((c) => c.output()).join("\n");
  assert.doesNotMatch(logs, /SQLITE_BUSY|database is locked|failed unexpectedly/);
  const workersUsed = new Set((await stack.db.attempt.findMany({ select: { workerId: true } })).map((a) => a.workerId));
  assert.equal(workersUsed.size, 3, "the three workers shared the work");
  assert.ok(reads > 10, `the web kept serving reads meanwhile (${reads})`);
  console.log(
    `sqlite load: 60 tasks x 50 photos by 3 worker processes, ${await stack.db.photo.count()} photos stored, ${reads} reads served, 0 busy errors`,
  );
});
