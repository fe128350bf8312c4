// The monitor's history: counts per time bucket and queue wait / runtime percentiles,
// counted by the database (SQLite here; PostgreSQL when TEST_DATABASE=postgres), and the
// chart and its table on /tasks.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { openDatabase, type Db } from "../lib/store/db.ts";
import { taskHistory } from "../lib/useCases/history.ts";
import { chartOf } from "../lib/useCases/historyChart.ts";
import { migrateIfNeeded } from "../lib/store/migrate.ts";
import { historyQueries } from "../lib/store/queries/history.ts";
import { freshDatabase, type TestDatabase } from "./support/database.ts";
import { startStack } from "./support/stack.ts";

describe("the monitor's history", () => {
  let database: TestDatabase;
  let db: Db;
  before(async () => {
    database = await freshDatabase();
    await migrateIfNeeded(database.url);
    db = await openDatabase(database.url);
  });
  after(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  // A fixed "now" on a minute boundary plus 30 s, so each time below falls in a known minute.
  const now = Date.parse("2026-12-03T10:00:30Z");
  const at = (minutesAgo: number, plusMs = 0) => new Date(now - minutesAgo * 60_000 + plusMs);

  async function task(
    createdMinutesAgo: number,
    state: "SUCCESS" | "FAILURE" | "PENDING",
    waitMs: number,
    runMs: number,
  ) {
    const createdAt = at(createdMinutesAgo);
    const startedAt = state === "PENDING" ? null : new Date(createdAt.getTime() + waitMs);
    const finishedAt = startedAt && new Date(startedAt.getTime() + runMs);
    const id = randomUUID();
    await db.task.create({
      data: {
        id,
        breed: "pug",
        limit: 1,
        state,
        createdAt,
        queuedAt: createdAt,
        startedAt,
        finishedAt,
        attemptCount: startedAt ? 1 : 0,
      },
    });
    if (startedAt)
      await db.attempt.create({
        data: { taskId: id, number: 1, workerId: "w", startedAt, finishedAt, outcome: state },
      });
    return id;
  }

  test("when tasks ran over the last 15 minutes, then each minute counts what was submitted, succeeded, failed and retried", async () => {
    await task(2, "SUCCESS", 100, 400); // 10:28:30
    await task(2, "SUCCESS", 100, 400);
    await task(5, "FAILURE", 1000, 2000); // 10:25:30
    await task(0.2, "PENDING", 0, 0); // 10:00:18, this minute
    await task(30, "SUCCESS", 100, 400); // outside the window
    const retried = await task(5, "FAILURE", 1000, 2000);
    await db.attempt.create({
      data: { taskId: retried, number: 2, workerId: "w", startedAt: at(4), finishedAt: at(4, 50), outcome: "RETRY" },
    });

    const history = await taskHistory(historyQueries(db), "15m", now);
    assert.equal(history.buckets.length, 15);
    assert.equal(history.buckets.at(-1)!.at, "2026-12-03T10:00:00.000Z", "the last bucket is this minute");
    assert.deepEqual(history.totals, { submitted: 5, succeeded: 2, failed: 2, retried: 1 });
    const minute = (iso: string) => history.buckets.find((b) => b.at === iso)!;
    assert.deepEqual(
      { ...minute("2026-12-03T09:58:00.000Z") },
      { at: "2026-12-03T09:58:00.000Z", submitted: 2, succeeded: 2, failed: 0, retried: 0 },
    );
    assert.equal(minute("2026-12-03T09:55:00.000Z").submitted, 2);
    assert.equal(minute("2026-12-03T09:55:00.000Z").failed, 2);
    assert.equal(minute("2026-12-03T09:56:00.000Z").retried, 1);
    assert.equal(history.buckets.at(-1)!.submitted, 1);

    // Waits: 100, 100, 1000, 1000 ms; runs: 400, 400, 2000, 2000 and the 50 ms retry.
    assert.equal(history.queueWait.count, 4);
    assert.ok(Math.abs(history.queueWait.p50Ms! - 100) <= 10, `p50 wait ${history.queueWait.p50Ms}`);
    assert.ok(Math.abs(history.queueWait.p95Ms! - 1000) <= 100, `p95 wait ${history.queueWait.p95Ms}`);
    assert.equal(history.runtime.count, 5);
    assert.ok(Math.abs(history.runtime.p50Ms! - 400) <= 40, `p50 run ${history.runtime.p50Ms}`);
    assert.ok(Math.abs(history.runtime.p95Ms! - 2000) <= 200, `p95 run ${history.runtime.p95Ms}`);

    const chart = chartOf(history);
    assert.equal(chart.yMax, 2);
    assert.equal(chart.lines.find((l) => l.series === "submitted")!.points.split(" ").length, 15);
    const day = await taskHistory(historyQueries(db), "1d", now);
    assert.equal(day.buckets.length, 48);
    assert.equal(day.totals.submitted, 6, "the day holds the task from 30 minutes ago too");
  });

  test("when a history is kept between reads, then buckets that ended are counted once and only the newest are asked for again", async () => {
    const later = now + 24 * 60 * 60_000; // a day on, on a window of its own
    const at = (minutesAgo: number) => new Date(later - minutesAgo * 60_000);
    const add = (minutesAgo: number) =>
      db.task.create({ data: { id: randomUUID(), breed: "pug", limit: 1, createdAt: at(minutesAgo) } });
    await add(10);
    const memory = new Map();
    const first = await taskHistory(historyQueries(db), "15m", later, memory);
    assert.equal(first.totals.submitted, 1);
    assert.ok(memory.size >= 12, `${memory.size} final buckets kept`);
    // Written into a bucket already final (as no real event can be), and into the current one.
    await add(10);
    await add(0.1);
    const second = await taskHistory(historyQueries(db), "15m", later + 1000, memory);
    assert.equal(second.totals.submitted, 2, "the final bucket came from memory; the current one was counted again");
    assert.equal(
      (await taskHistory(historyQueries(db), "15m", later + 1000)).totals.submitted,
      3,
      "without memory everything is counted",
    );
  });

  test("when nothing happened, then the history is empty and says so without percentiles", async () => {
    const history = await taskHistory(historyQueries(db), "1h", Date.parse("2030-01-01T00:00:00Z"));
    assert.deepEqual(history.totals, { submitted: 0, succeeded: 0, failed: 0, retried: 0 });
    assert.deepEqual(history.queueWait, { count: 0, p50Ms: null, p95Ms: null });
    assert.equal(chartOf(history).yMax, 1);
  });
});

describe("the history on the monitor page", () => {
  test("when a person opens /tasks, then the last hour is drawn as a chart with a table beside it, and the window can change", async () => {
    const stack = await startStack({ workers: 1 });
    try {
      const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
      const { waitForTaskState } = await import("./support/stack.ts");
      await waitForTaskState(stack.db, body.id, ["SUCCESS"]);
      const page = (await stack.http().get("/tasks").expect(200)).text;
      assert.match(page, /<h2 class="title is-5">Last 1 hour<\/h2>/);
      // A group of focusable steps, each named by its values (a role="img" would hide them from a screen reader).
      assert.match(page, /<svg viewBox="0 0 420 180" role="group"/);
      const steps = [
        ...page.matchAll(
          /<g class="chart-point" tabindex="0" role="img" aria-label="([^"]+)">\s*<title>([^<]+)<\/title>/g,
        ),
      ];
      assert.equal(steps.length, 30);
      assert.ok(steps.every((m) => m[1] === m[2]));
      // The task was submitted and finished in the window (in one step, or two at a boundary).
      assert.ok(
        steps.some((m) => / UTC: submitted (?!0,)[\d.]+, /.test(m[1]!)),
        "a step shows the submit",
      );
      assert.ok(
        steps.some((m) => /, succeeded (?!0,)[\d.]+, failed 0, retried 0 per minute$/.test(m[1]!)),
        "a step shows the success",
      );
      assert.match(
        page,
        /<title id="history-chart-title">Jobs per minute over the last 1 hour: 1 submitted, 1 succeeded, 0 failed, 0 retried<\/title>/,
      );
      assert.match(page, /<summary>As a table<\/summary>/);
      const day = (await stack.http().get("/tasks?window=1d").expect(200)).text;
      assert.match(day, /Last 1 day/);
      assert.equal((day.match(/<tr><td class="is-nowrap">/g) ?? []).length, 48);
      assert.equal((day.match(/<g class="chart-point" tabindex="0"/g) ?? []).length, 48);
      assert.match((await stack.http().get("/tasks?window=nonsense").expect(200)).text, /Last 1 hour/);
      // Names every object has are not windows either.
      for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
        assert.match((await stack.http().get(`/tasks?window=${name}`).expect(200)).text, /Last 1 hour/, name);
        assert.equal((await stack.http().get(`/api/history?window=${name}`).expect(200)).body.window, "1h", name);
        assert.doesNotMatch(
          (await stack.http().get(`/tasks?refused=${name}`).expect(200)).text,
          /native code|\[object /,
          name,
        );
      }
    } finally {
      await stack.stop();
    }
  });
});
