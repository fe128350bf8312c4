// `npm run bench` (last step) or `npx tsx bench/monitor.ts`: the monitor with 100,000 tasks
// (issue 11), against a real web process on SQLite. The tasks are one every 1.5 s up to
// now (the last day holds ~57,600), one in ten FAILURE with one of three errors, one in
// twenty with a RETRY attempt before it. Two kinds of numbers, each the median of runs:
//   - each monitor page's p99 under 10 clients, full against nearly empty, as a ratio;
//   - the queries behind them run once, uncached (the pages cache the history and the
//     counts for 5 s, so a page's p99 alone would hide what a cache miss costs).
// Prints a table, writes bench-monitor.json, exits 1 when a target is missed.
//
//   BENCH_RUNS=3  BENCH_PAGE_REQUESTS=400  BENCH_MONITOR_TASKS=100000
// The nearly empty monitor holds 1,000 tasks, so every page lists as many as the full one's,
// and the two take turns every 50 requests (bench/load.ts alternatingP99).
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { failureGroups } from "../lib/useCases/failures.ts";
import { taskHistory } from "../lib/useCases/history.ts";
import { openStore } from "../lib/store/index.ts";
import { openQueries } from "../lib/store/queries/index.ts";
import { listTasks } from "../lib/useCases/taskSearch.ts";
import { freshDatabase, migratedTemplate, sqlTime } from "./db.ts";
import { alternatingP99, median } from "./load.ts";
import { ROOT } from "./processes.ts";
import { cleanUp, startApp, startDogApi } from "./stack.ts";

const whole = (name: string, fallback: number) =>
  Math.max(1, Math.floor(Number(process.env[name] ?? fallback)) || fallback);
const RUNS = whole("BENCH_RUNS", 3);
const REQUESTS = whole("BENCH_PAGE_REQUESTS", 400);
const TASKS = whole("BENCH_MONITOR_TASKS", 100_000);
/** Enough for a page of 25 in every list, the FAILURE + "timeout" search included. */
const EMPTY_TASKS = 1000;
/** A page with all the tasks may take this many times as long as with almost none. */
const PAGE_RATIO_TARGET = 1.5;
/** A query behind a page, uncached, within this many milliseconds. */
const QUERY_TARGET_MS = 250;
const log = (text: string) => console.error(`[bench monitor ${new Date().toISOString().slice(11, 19)}] ${text}`);

const PAGES = {
  "/tasks": "/tasks",
  "/tasks?window=1d": "/tasks?window=1d",
  "/tasks?state=FAILURE&error=timeout": "/tasks?state=FAILURE&error=timeout",
  "/api/history?window=1d": "/api/history?window=1d",
  "/api/failures": "/api/failures",
};
const ERRORS = [
  "gave up after 5 attempts: dog.ceo answered 500 Internal Server Error",
  "gave up after 5 attempts: dog.ceo did not answer within 10 s (headers timeout)",
  "dog.ceo: Breed not found (main breed does not exist)",
];

function seedTasks(file: string, count: number): void {
  const db = new Database(file);
  const now = Date.now();
  const task =
    db.prepare(`INSERT INTO Task (id, breed, subBreed, "limit", state, error, photoCount, attemptCount, createdAt, queuedAt, startedAt, finishedAt, updatedAt)
    VALUES (@id, 'hound', 'afghan', 5, @state, @error, 0, @attempts, @at, @at, @started, @finished, @finished)`);
  const attempt = db.prepare(
    "INSERT INTO Attempt (taskId, number, workerId, startedAt, finishedAt, outcome, error) VALUES (?, ?, 'bench-seed', ?, ?, ?, ?)",
  );
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const at = now - (count - i) * 1500;
      const failed = i % 10 === 0;
      const retried = i % 20 === 5;
      const id = randomUUID();
      const started = at + 20 + (i % 50);
      const finished = started + 100 + (i % 400);
      task.run({
        id,
        state: failed ? "FAILURE" : "SUCCESS",
        error: failed ? ERRORS[i % 3] : null,
        attempts: retried ? 2 : 1,
        at: sqlTime(at),
        started: sqlTime(started),
        finished: sqlTime(finished),
      });
      if (retried)
        attempt.run(
          id,
          1,
          sqlTime(started),
          sqlTime(started + 50),
          "RETRY",
          "dog.ceo answered 503 Service Unavailable",
        );
      attempt.run(
        id,
        retried ? 2 : 1,
        sqlTime(started),
        sqlTime(finished),
        failed ? "FAILURE" : "SUCCESS",
        failed ? ERRORS[i % 3] : null,
      );
    }
  })();
  db.close();
}

async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const began = performance.now();
  await fn();
  return performance.now() - began;
}

const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-bench-monitor-"));
const children: Parameters<typeof cleanUp>[0] = [];
const queues: string[] = [];
let failed = false;
try {
  const template = await migratedTemplate(dir);
  const files = {
    empty: await freshDatabase(template, dir, "monitor-empty"),
    full: await freshDatabase(template, dir, "monitor-full"),
  };
  // Nearly empty, yet each list as long as the full one's: the search below finds one task in 30.
  seedTasks(files.empty, EMPTY_TASKS);
  log(`seeding ${TASKS} tasks`);
  seedTasks(files.full, TASKS);

  // The queries, uncached, in this process (the same code the web runs).
  const queries: Record<string, number[]> = {};
  const store = await openStore(`file:${files.full}`);
  const data = await openQueries(`file:${files.full}`, store);
  for (let run = 0; run < RUNS + 1; run++) {
    const times = {
      "history 1 day": await timeOnce(() => taskHistory(data.history, "1d")),
      "history 1 hour": await timeOnce(() => taskHistory(data.history, "1h")),
      "failure groups": await timeOnce(() => failureGroups(data, 5)),
      "search FAILURE + error words": await timeOnce(() =>
        listTasks(data.search, { state: "FAILURE", error: "timeout", limit: 25 }),
      ),
      "oldest first, page 1": await timeOnce(() => listTasks(data.search, { order: "oldest", limit: 25 })),
    };
    if (run === 0) continue; // warm-up
    for (const [name, ms] of Object.entries(times)) (queries[name] ??= []).push(ms);
  }
  await data.close();
  await store.close();

  const dogApiUrl = await startDogApi(children, 0);
  const urls = {
    empty: (await startApp(children, queues, files.empty, dogApiUrl, false)).url,
    full: (await startApp(children, queues, files.full, dogApiUrl, false)).url,
  };
  const both = (page: string) => ({ empty: urls.empty + page, full: urls.full + page });
  for (const page of Object.values(PAGES)) await alternatingP99(both(page), 50); // warm-up
  const pages: Record<string, { empty: number[]; full: number[] }> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const [name, page] of Object.entries(PAGES)) {
      const entry = (pages[name] ??= { empty: [], full: [] });
      const { empty, full } = await alternatingP99(both(page), REQUESTS);
      entry.empty.push(empty);
      entry.full.push(full);
    }
    log(`run ${run + 1} of ${RUNS} done`);
  }

  const lines = [
    `GenDog monitor bench: ${TASKS} tasks (one in ten FAILURE) against ${EMPTY_TASKS}, ${RUNS} run(s), ${REQUESTS} requests per page and size from 10 clients, taking turns; medians`,
    "",
  ];
  lines.push("| page | p99 nearly empty | p99 with the tasks | ratio | target |", "|---|---|---|---|---|");
  const result: Record<string, unknown> = { tasks: TASKS, runs: RUNS, pages: {}, queries: {} };
  for (const [name, { empty, full }] of Object.entries(pages)) {
    const ratio = median(full) / median(empty);
    const ok = ratio <= PAGE_RATIO_TARGET;
    failed ||= !ok;
    lines.push(
      `| ${name} | ${median(empty).toFixed(1)} ms | ${median(full).toFixed(1)} ms | ${ratio.toFixed(2)}× | ≤ ${PAGE_RATIO_TARGET}× ${ok ? "met" : "MISSED"} |`,
    );
    (result.pages as Record<string, unknown>)[name] = { emptyP99Ms: median(empty), fullP99Ms: median(full), ratio };
  }
  lines.push("", "| query, uncached, with the tasks | median | target |", "|---|---|---|");
  for (const [name, times] of Object.entries(queries)) {
    const ok = median(times) <= QUERY_TARGET_MS;
    failed ||= !ok;
    lines.push(`| ${name} | ${median(times).toFixed(1)} ms | ≤ ${QUERY_TARGET_MS} ms ${ok ? "met" : "MISSED"} |`);
    (result.queries as Record<string, unknown>)[name] = { medianMs: median(times), runsMs: times };
  }
  console.log(lines.join("\n"));
  await writeFile(path.join(ROOT, "bench-monitor.json"), JSON.stringify(result, null, 2));
} catch (err) {
  console.error(`monitor bench failed: ${err instanceof Error ? err.message : String(err)}`);
  failed = true;
} finally {
  await cleanUp(children, queues);
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
