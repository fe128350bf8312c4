// Request logs: one line per request with method, path, status, time and a request id;
// the same id in the X-Request-Id header, on the error page and in the JSON error body.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import request from "supertest";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";
import { openDatabase } from "../lib/store/db.ts";
import { startWeb } from "../web.ts";
import { deleteQueues, testConfig } from "./support/stack.ts";
import type { TestDatabase } from "./support/database.ts";

interface Line {
  level: number;
  err?: { type: string; message: string; stack: string };
  msg: string;
  reqId?: string;
  req?: { id: string; method: string; path: string };
  res?: { status: number };
  responseTime?: number;
}

const lines: Line[] = [];
let fake: FakeDogApi;
let database: TestDatabase;
let web: Awaited<ReturnType<typeof startWeb>>;
let queue: { name: string; retry: { baseMs: number; maxMs: number } };
let databaseUrl: string;
const http = () => request(`http://127.0.0.1:${web.port}`);
const linesOf = (id: string) => lines.filter((l) => l.req?.id === id || l.reqId === id);

before(async () => {
  fake = await startFakeDogApi();
  const test = await testConfig(fake, { LOG_LEVEL: "info" });
  database = test.database;
  databaseUrl = test.config.databaseUrl;
  queue = { name: test.config.queueName, retry: test.config.retry };
  const logger = pino({ level: "info" }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  web = await startWeb(test.config, logger);
});

after(async () => {
  await web.stop();
  await fake.close();
  await deleteQueues(queue.name, queue.retry);
  await database.drop();
});

test("when a page is served, one info line says method, path (no query), status, time and the request id the response carries", async () => {
  const res = await http().get("/?page=1&secret=typed").expect(200);
  const id = res.headers["x-request-id"]!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  const mine = linesOf(id);
  assert.equal(mine.length, 1, JSON.stringify(mine));
  const [line] = mine;
  assert.equal(line!.level, 30);
  assert.deepEqual(line!.req, { id, method: "GET", path: "/" });
  assert.deepEqual(line!.res, { status: 200 });
  assert.equal(typeof line!.responseTime, "number");
  assert.match(line!.msg, /^GET \/ 200 in \d+ ms$/);
  assert.ok(!JSON.stringify(line).includes("secret"), "the query is not logged");
});

test("when a page is missing, the error page and the JSON error quote the request id of the response and its log line", async () => {
  const page = await http().get("/no-such-page").expect(404);
  const pageId = page.headers["x-request-id"]!;
  assert.match(page.text, new RegExp(`quote request <code>${pageId}</code>`));
  const api = await http().get("/api/no-such-endpoint").expect(404);
  assert.equal(api.body.error.requestId, api.headers["x-request-id"]);
  assert.equal(linesOf(api.body.error.requestId)[0]?.res?.status, 404);
});

test("when a proxy in front sends a well-formed X-Request-Id, it is kept; a malformed one is replaced", async () => {
  const kept = await http().get("/api/tasks").set("X-Request-Id", "edge-7f3a9c21").expect(200);
  assert.equal(kept.headers["x-request-id"], "edge-7f3a9c21");
  assert.equal(linesOf("edge-7f3a9c21").length, 1);
  const replaced = await http().get("/api/tasks").set("X-Request-Id", "<script>").expect(200);
  assert.match(replaced.headers["x-request-id"]!, /^[0-9a-f-]{36}$/);
});

test("when a health check is answered, its line is at debug, out of the info log", async () => {
  const res = await http().get("/healthz").expect(200);
  assert.equal(linesOf(res.headers["x-request-id"]!).length, 0);
});

test("when a request fails inside, the error is logged once as an object with its stack, under the request's id", async () => {
  const db = await openDatabase(databaseUrl);
  await db.$executeRawUnsafe('ALTER TABLE "Task" RENAME TO "Task_gone"');
  try {
    const res = await http().get("/api/tasks").expect(500);
    const id = res.body.error.requestId;
    assert.equal(id, res.headers["x-request-id"]);
    const errors = linesOf(id).filter((l) => l.level >= 50 && l.err);
    assert.ok(errors.length >= 1, JSON.stringify(linesOf(id)));
    assert.match(errors[0]!.err!.stack, /\n\s+at /, "a stack, not only the message");
    assert.ok(!JSON.stringify(res.body).includes("Task_gone"), "nothing internal reaches the caller");
  } finally {
    await db.$executeRawUnsafe('ALTER TABLE "Task_gone" RENAME TO "Task"');
    await db.$disconnect();
  }
});
