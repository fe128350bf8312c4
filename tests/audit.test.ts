// The audit trail: each action that changes or removes work (retry, cancel, pause, resume,
// purge, discard...) is written down with who did it, to what, and what came of it, and
// shown newest first on /audit and at GET /api/audit, a page at a time. Through the real
// web, worker, RabbitMQ, database and the dog.ceo stand-in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { recordAction } from "../lib/useCases/audit.ts";
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
const auth = (user: string) => `Basic ${Buffer.from(`${user}:${PASSWORD}`).toString("base64")}`;

interface Entry {
  actor: string;
  action: string;
  target: string;
  count: number;
  detail: string | null;
  at: string;
}

describe("the audit trail", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD, RETRY_MAX_ATTEMPTS: "1" } });
  });
  after(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: object = {}, user = "ops") =>
    stack.http().post(path).set("Content-Type", "application/json").set("Authorization", auth(user)).send(body);
  const newest = async (n: number): Promise<Entry[]> =>
    (await stack.http().get(`/api/audit?limit=${n}`).expect(200)).body.entries;

  test("when nothing has been done yet, then the page says so", async () => {
    const page = await stack.http().get("/audit").expect(200);
    assert.match(page.text, /Nothing recorded yet\./);
    assert.match(page.text, /<a class="navbar-item is-active" href="\/audit" aria-current="page">Audit<\/a>/);
    assert.deepEqual((await stack.http().get("/api/audit").expect(200)).body.total, 0);
  });

  test("when people retry, cancel, pause, resume, purge and discard, then each is recorded with who did it, newest first", async () => {
    // A failure, retried by alice.
    stack.fake.failNext("http500");
    const failed = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id;
    await waitForTaskState(stack.db, failed, ["FAILURE"]);
    await post(`/api/tasks/${failed}/retry`, {}, "alice").expect(202);
    await waitForTaskState(stack.db, failed, ["SUCCESS"]);

    // Every worker paused by bob; two jobs wait; one is cancelled, then the queue purged.
    await waitFor(
      "the worker heard from",
      async () => (await stack.http().get("/api/workers").expect(200)).body.workers.length === 1,
    );
    await post("/api/workers/pause", {}, "bob").expect(202);
    await waitFor("paused", async () => (await stack.http().get("/api/workers").expect(200)).body.workers[0].paused);
    const waiting = [];
    for (let i = 0; i < 2; i++)
      waiting.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
    await waitFor("both jobs queued", async () => (await queueDepth(stack.config.queueName)) === 2);
    await post(`/api/tasks/${waiting[0]}/cancel`, {}, "bob").expect(200);
    assert.equal((await post("/api/queue/purge", { expected: 2 }, "bob").expect(200)).body.removed, 2);
    await post("/api/workers/resume", {}, "bob").expect(202);

    // A poison message dead-lettered, then discarded by carol.
    const dead = await queueDepth(`${stack.config.queueName}.dead`);
    await publishRaw(stack.config.queueName, "this is not json");
    await waitFor(
      "the poison message dead-lettered",
      async () => (await queueDepth(`${stack.config.queueName}.dead`)) === dead + 1,
    );
    const letter = (await stack.http().get("/api/dead-letters").expect(200)).body.letters.find(
      (l: { taskId: string | null }) => l.taskId === null,
    );
    await post(`/api/dead-letters/${letter.key}/discard`, {}, "carol").expect(200);

    // A refused action is not recorded: the count was wrong, nothing was purged.
    await post("/api/queue/purge", { expected: 5 }, "mallory").expect(409);

    const entries = await newest(10);
    assert.deepEqual(
      entries.map((e) => [e.action, e.actor.split(" from ")[0], e.target, e.count]),
      [
        ["discard", "carol", letter.key, 1],
        ["resume", "bob", "all", 1],
        ["purge", "bob", "work queue", 2],
        ["cancel", "bob", waiting[0], 1],
        ["pause", "bob", "all", 1],
        ["retry", "alice", failed, 1],
      ],
    );
    assert.equal(
      entries.find((e) => e.action === "purge")!.detail,
      "1 tasks cancelled",
      "the cancelled one was already REVOKED",
    );
    assert.ok(entries.every((e) => / from (::ffff:)?127\.0\.0\.1$/.test(e.actor) && !Number.isNaN(Date.parse(e.at))));

    const page = (await stack.http().get("/audit").expect(200)).text;
    assert.match(page, /Entries 1–6 of 6/);
    assert.match(page, new RegExp(`<tr data-action="retry">[\\s\\S]*?href="/tasks/${failed}"`));
    const onlyPauses = (await stack.http().get("/audit?action=pause").expect(200)).text;
    assert.match(onlyPauses, /Entries 1–1 of 1 \(pause\)/);
    assert.equal((await stack.http().get("/api/audit?action=nonsense").expect(400)).body.error.code, "invalid_input");
  });

  test("when a group of failures is retried from the monitor's form, then the trail says how many", async () => {
    stack.fake.failNext("http500", 2);
    const ids = [];
    for (let i = 0; i < 2; i++)
      ids.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
    for (const id of ids) await waitForTaskState(stack.db, id, ["FAILURE"]);
    const { groups } = (await stack.http().get("/api/failures").expect(200)).body;
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/tasks").expect(200)).text);
    await agent
      .post("/failures/retry")
      .set("Authorization", auth("dave"))
      .type("form")
      .send({ _csrf: token, fingerprint: groups[0].fingerprint, expected: String(groups[0].count) })
      .expect(303);
    const [entry] = await newest(1);
    assert.deepEqual(
      [entry!.action, entry!.actor.split(" from ")[0], entry!.target, entry!.count],
      ["retry-group", "dave", groups[0].fingerprint, 2],
    );
  });

  test("when ticked tasks are retried in bulk, then the trail says who, how many and which", async () => {
    const ids = [randomUUID(), randomUUID()];
    await stack.db.task.createMany({
      data: ids.map((id) => ({
        id,
        breed: "pug",
        limit: 1,
        state: "FAILURE" as const,
        attemptCount: 1,
        error: "bulk",
        finishedAt: new Date(),
      })),
    });
    assert.equal(
      (await post("/api/tasks/bulk", { action: "retry", ids, expected: 2 }, "erin").expect(200)).body.done,
      2,
    );
    const [entry] = await newest(1);
    assert.deepEqual(
      [entry!.action, entry!.actor.split(" from ")[0], entry!.target, entry!.count],
      ["bulk-retry", "erin", "2 selected tasks", 2],
    );
  });

  test("when the trail is longer than a page, then it is read a page at a time, with links both ways", async () => {
    for (let i = 0; i < 30; i++)
      await recordAction(stack.data.audit, { by: "script from 127.0.0.1", action: "discard", target: `letter-${i}` });
    const total = (await stack.http().get("/api/audit").expect(200)).body.total as number;
    const first = (await stack.http().get("/audit").expect(200)).text;
    assert.match(first, new RegExp(`Entries 1–25 of ${total}`));
    assert.match(first, /<a class="pagination-next" href="\/audit\?page=2" rel="next">/);
    assert.doesNotMatch(first, /pagination-previous/);
    const second = (await stack.http().get("/audit?page=2").expect(200)).text;
    assert.match(second, new RegExp(`Entries 26–${total} of ${total}`));
    assert.match(second, /<a class="pagination-previous" href="\/audit" rel="prev">/);
    const api = (await stack.http().get("/api/audit?page=2&limit=25").expect(200)).body;
    assert.equal(api.entries.length, total - 25);
    assert.equal((await stack.http().get("/audit?page=0").expect(400)).status, 400);
  });
});
