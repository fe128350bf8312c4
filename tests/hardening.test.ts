// Holes an attack found, closed: an id search that read % and _ as wildcards, pages with
// a CSRF token that caches could keep, forged worker heartbeats that grew the monitor and
// turned its numbers into text, and a dog.ceo error message that became every page's size.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import amqplib from "amqplib";
import { MAX_TRACKED_WORKERS } from "../lib/monitor/workerRegistry.ts";
import http from "node:http";
import { AMQP_URL, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

let stack: Stack;
before(async () => {
  stack = await startStack({ workers: 1 });
});
after(() => stack.stop());

describe("searching tasks by id prefix", () => {
  test("when the prefix holds % or _ (LIKE's wildcards) or other non-id characters, it is refused with 400 instead of matching every task", async () => {
    await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    for (const id of ["%", "_", "a%", "%25", "' OR 1=1", "zz"]) {
      const res = await stack.http().get("/api/tasks").query({ id }).expect(400);
      assert.equal(res.body.error.field, "id", id);
    }
    await stack.http().get("/tasks").query({ id: "%" }).expect(400);
  });

  test("when the prefix is part of a real id, in any case, the task is found", async () => {
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    for (const prefix of [body.id.slice(0, 6), body.id.slice(0, 6).toUpperCase(), body.id.slice(0, 9)]) {
      const res = await stack.http().get("/api/tasks").query({ id: prefix }).expect(200);
      assert.deepEqual(
        res.body.tasks.map((t: { id: string }) => t.id),
        [body.id],
      );
    }
  });
});

describe("caching", () => {
  test("pages with a CSRF token or a cookie, the API, errors and health say no-store; static files may be cached", async () => {
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    for (const path of ["/", "/tasks", `/tasks/${body.id}`, "/api/tasks", "/api/queue", "/healthz", "/no-such-page"]) {
      const res = await stack.http().get(path);
      assert.equal(res.headers["cache-control"], "no-store", path);
    }
    const css = await stack.http().get("/static/bulma/bulma.min.css").expect(200);
    assert.match(css.headers["cache-control"] ?? "", /max-age=\d+/);
  });
});

describe("forged worker heartbeats", () => {
  test(
    "when 5,001 fake workers and malformed heartbeats arrive on the events exchange, the monitor tracks a bounded number, shows only well-formed ones, and its counts stay numbers",
    { timeout: 60_000 },
    async () => {
      const connection = await amqplib.connect(AMQP_URL);
      try {
        const channel = await connection.createConfirmChannel();
        const exchange = `${stack.config.queueName}.events`;
        const send = (beat: unknown) =>
          channel.publish(exchange, "worker.heartbeat", Buffer.from(JSON.stringify(beat)), {
            contentType: "application/json",
          });
        const fake = (i: number) => ({
          id: `fake-${i}`,
          host: "h",
          pid: i + 1,
          concurrency: 1,
          done: 0,
          failed: 0,
          skipped: 0,
          inFlight: 1,
          startedAt: new Date().toISOString(),
          ready: true,
        });
        // Malformed (first, while there is room): counts as text, huge strings, nonsense ranges, wrong types.
        send({ ...fake(9001), id: "text-count", inFlight: "5" });
        send({ ...fake(9002), id: "x".repeat(100_000) });
        send({ ...fake(9003), id: "huge-host", host: "h".repeat(10_000) });
        send({ ...fake(9004), id: "negative", done: -1 });
        send({ ...fake(9005), id: "markup<script>" });
        send({ ...fake(9006), id: "bad-date", startedAt: "yesterday" });
        send([1, 2, 3]);
        for (let i = 0; i < 5001; i++) send(fake(i));
        send({ ...fake(0), done: 12345 }); // heard last: a worker already tracked (new ones find no room)
        await channel.waitForConfirms();
      } finally {
        await connection.close();
      }
      await waitFor(
        "the last heartbeat to be heard",
        async () =>
          (await stack.http().get("/api/workers")).body.workers.some(
            (w: { id: string; done: number }) => w.id === "fake-0" && w.done === 12345,
          ),
        20_000,
      );
      const { workers } = (await stack.http().get("/api/workers").expect(200)).body as {
        workers: { id: string; host: string }[];
      };
      assert.ok(workers.length <= MAX_TRACKED_WORKERS, `${workers.length} workers tracked`);
      assert.ok(workers.every((w) => w.id.length <= 100 && w.host.length <= 255 && !w.id.includes("<")));
      for (const id of ["text-count", "negative", "bad-date"])
        assert.ok(!workers.some((w) => w.id === id), `${id} was dropped`);
      const queue = (await stack.http().get("/api/queue").expect(200)).body;
      assert.equal(typeof queue.unacked, "number", JSON.stringify(queue));
      const page = await stack.http().get("/tasks").expect(200);
      assert.ok(page.text.length < 300_000, `/tasks is ${page.text.length} characters`);
      // The real worker still reports in.
      await waitFor(
        "the real worker's heartbeat",
        async () =>
          (await stack.http().get("/api/workers")).body.workers.some(
            (w: { id: string }) => w.id === stack.workers[0]!.id,
          ),
        10_000,
      );
    },
  );
});

describe("text from dog.ceo", () => {
  test(
    "when dog.ceo refuses a task with a 900 KB message, the stored error is shortened and says so, and the pages and the live event stay small",
    { timeout: 30_000 },
    async () => {
      let streamed = "";
      const stream = http.get(`${stack.url}/events`, { agent: false }, (res) => {
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (streamed += chunk));
      });
      try {
        await waitFor("the stream's snapshot", async () => streamed.includes("event: snapshot"));
        stack.fake.failNext("longError", 1);
        const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
        const task = await waitForTaskState(stack.db, body.id, ["FAILURE"], 15_000);
        assert.ok(task.error!.length <= 500, `${task.error!.length} characters stored`);
        assert.match(task.error!, /^dog\.ceo: Breed not found \(x+… \(shortened\)$/);
        for (const path of ["/", "/tasks", `/tasks/${body.id}`]) {
          const page = await stack.http().get(path).expect(200);
          const longest = Math.max(0, ...[...page.text.matchAll(/x+/g)].map((m) => m[0].length));
          assert.ok(longest < 500, `${path} shows ${longest} characters of the message`);
          // /tasks also lists this file's forged workers
          if (path !== "/tasks") assert.ok(page.text.length < 100_000, `${path} is ${page.text.length} characters`);
        }
        assert.match(
          (await stack.http().get(`/tasks/${body.id}`)).text,
          /\(shortened\)/,
          "the task page says it was shortened",
        );
        await waitFor("the failure to be streamed", async () => streamed.includes(`"state":"FAILURE"`));
        assert.ok(streamed.length < 50_000, `${streamed.length} characters streamed`);
      } finally {
        stream.destroy();
      }
    },
  );
});
