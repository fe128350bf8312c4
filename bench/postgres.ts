// `npx tsx bench/postgres.ts` (also run by `npm run bench`): the load scenario on PostgreSQL beside SQLite, and one
// worker process against two, in the same run.
//  - SQLite vs PostgreSQL: one web + one worker, 0 ms and 100 ms dog.ceo latency, warm
//    as bench/run.ts measures (after BENCH_WARM_UP_JOBS), with CPU per job of the web, the
//    worker and the database's own backends. Target: PostgreSQL >= 85% of SQLite (each
//    run against the SQLite run just before it), submit p99 <= 50 ms.
//  - One worker vs two at 100 ms, on PostgreSQL, each with WORKER_CONCURRENCY=4: on this
//    one 2-core machine two default workers (128 jobs each in flight) would only share the
//    CPU that the web, PostgreSQL and RabbitMQ also use, so the workers are made
//    latency-bound (4 jobs / 100 ms = 40 jobs/s each), far below what the rest can take:
//    then what a second worker adds is what a second worker host adds. Target: >= 1.7x. Medians of BENCH_RUNS (3);
//    BENCH_JOBS (1000) per phase; BENCH_SCALING=0 skips the workers. PostgreSQL: the local server as its trusted
//    superuser (BENCH_POSTGRES_URL); a database per run, dropped after.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import pg from "pg";
import { freshDatabase, migratedTemplate } from "./db.ts";
import { drive, median } from "./load.ts";
import {
  AMQP_URL,
  consumers,
  entryMode,
  freePort,
  httpOk,
  procStats,
  startChild,
  waitUntil,
  type Child,
} from "./processes.ts";
import { WARM_UP_JOBS } from "./scenarios.ts";
import { cleanUp, startDogApi } from "./stack.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const WARM_UP = Number(process.env.BENCH_WARM_UP_JOBS ?? WARM_UP_JOBS);
/** BENCH_SCALING=0 leaves out one worker against two (to compare the engines alone). */
const SCALING = process.env.BENCH_SCALING !== "0";
const ADMIN = process.env.BENCH_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const JOB = { breed: "hound", limit: 10 };
/** The application_name of the bench's own polling connection. */
const POLLER = "gendog-bench-poller";

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

/** A fresh database of either kind: its URL, how to read the run's finish, and how to drop it. */
async function database(kind: "sqlite" | "postgres", template: string, dir: string) {
  if (kind === "sqlite") {
    const file = await freshDatabase(template, dir, `pg-bench-${randomBytes(3).toString("hex")}`);
    const finished = async () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare("SELECT count(*) AS n, max(finishedAt) AS last FROM Task WHERE state = 'SUCCESS'").get() as {
          n: number;
          last: string | null;
        };
      } finally {
        db.close();
      }
    };
    return { url: `file:${file}`, name: undefined, finished, drop: async () => {} };
  }
  const name = `gendog_bench_${randomBytes(4).toString("hex")}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = Object.assign(new URL(ADMIN), { pathname: `/${name}` }).toString();
  // One connection polls the whole run, named so that backendCpu leaves it out: a new one per
  // poll would cost the server a process start every 100 ms, counted as the app's.
  let poller: pg.Client | undefined;
  const finished = async () => {
    if (!poller) {
      poller = new pg.Client({ connectionString: url, application_name: POLLER });
      await poller.connect();
    }
    const { rows } = await poller.query(
      `SELECT count(*)::int AS n, to_char(max("finishedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last FROM "Task" WHERE state = 'SUCCESS'`,
    );
    return rows[0] as { n: number; last: string | null };
  };
  const drop = async () => {
    await poller?.end().catch(() => {});
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  return { url, name, finished, drop };
}

/**
 * CPU seconds of the PostgreSQL backends serving one database (the bench's own poller left
 * out), from /proc (the server is on this machine). Backends come and go with the pools, so they are polled: one that
 * ends keeps the last figure read. The server's shared processes (WAL writer,
 * checkpointer) are not counted: other tests on this machine use them too.
 */
function backendCpu(name: string) {
  const client = new pg.Client({ connectionString: ADMIN });
  const base = new Map<number, number>();
  const last = new Map<number, number>();
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> = Promise.resolve();
  let stopped = false;
  const poll = async (first: boolean) => {
    const { rows } = await client.query(
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name IS DISTINCT FROM $2`,
      [name, POLLER],
    );
    for (const { pid } of rows as { pid: number }[]) {
      let cpuS: number;
      try {
        cpuS = procStats(pid).cpuS;
      } catch {
        continue; // ended between the query and the read
      }
      if (!base.has(pid)) base.set(pid, first ? cpuS : 0); // a backend born during the phase counts from 0
      last.set(pid, cpuS);
    }
  };
  return {
    async start() {
      await client.connect();
      await poll(true);
      // A poll still running when stop() is called is awaited there, and schedules no other.
      const tick = () => {
        polling = poll(false)
          .catch(() => {}) // a sample missed; the next one reads the same counters
          .finally(() => {
            if (!stopped) timer = setTimeout(tick, 200);
          });
      };
      timer = setTimeout(tick, 200);
    },
    async stop(): Promise<number> {
      stopped = true;
      clearTimeout(timer);
      await polling;
      await poll(false).catch(() => {});
      await client.end();
      let total = 0;
      for (const [pid, cpuS] of last) total += cpuS - base.get(pid)!;
      return total;
    },
  };
}

/**
 * One run, as bench/run.ts measures: JOBS on fresh processes (cold), WARM_UP more, then JOBS
 * again (warm, the figures reported). Jobs/s from the first submit to the last SUCCESS; the
 * submits' p99; CPU per job of the web, the worker(s) and the database's backends.
 */
async function run(
  kind: "sqlite" | "postgres",
  latencyMs: number,
  workers: number,
  concurrency: string | undefined,
  template: string,
  dir: string,
) {
  const children: Child[] = [];
  const queue = `gendog.bench.${randomBytes(4).toString("hex")}`;
  const db = await database(kind, template, dir);
  try {
    const dogApiUrl = await startDogApi(children, latencyMs);
    const port = await freePort();
    const env = {
      DATABASE_URL: db.url,
      AMQP_URL,
      QUEUE_NAME: queue,
      DOG_API_URL: dogApiUrl,
      DOG_API_MAX_RPS: "0",
      RATE_LIMIT_PER_MINUTE: "0",
      LOG_LEVEL: "warn",
      PORT: String(port),
      NODE_ENV: "production",
      SECURE_COOKIES: "false",
      ...(concurrency ? { WORKER_CONCURRENCY: concurrency } : {}),
    };
    const entry = entryMode();
    children.push(startChild("web", entry.web, env));
    await waitUntil("the web to be ready", httpOk(`http://127.0.0.1:${port}/readyz`), 60_000, children.at(-1));
    for (let i = 0; i < workers; i++) children.push(startChild(`worker${i + 1}`, entry.worker, env));
    await waitUntil("the workers to consume", async () => (await consumers(queue)) === workers, 60_000);
    let submitted = 0;
    const phase = async (amount: number) => {
      const started = Date.now();
      const submit = await drive({
        url: `http://127.0.0.1:${port}/api/tasks`,
        method: "POST",
        body: JOB,
        amount,
        connections: 10,
        deadlineMs: 180_000,
      });
      submitted += amount;
      const deadline = Date.now() + 180_000;
      let done = await db.finished();
      while (done.n < submitted && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        done = await db.finished();
      }
      if (done.n < submitted || !done.last) throw new Error(`${kind}: only ${done.n} of ${submitted} tasks succeeded`);
      return { jobsPerSec: amount / ((Date.parse(done.last) - started) / 1000), p99Ms: submit.p99Ms };
    };
    const cold = await phase(JOBS);
    if (WARM_UP > 0) await phase(WARM_UP);
    const cpu = () => children.filter((c) => c.name !== "dog.ceo").map((c) => procStats(c.pid).cpuS);
    const backends = db.name ? backendCpu(db.name) : undefined;
    await backends?.start();
    const before = cpu();
    const warm = await phase(JOBS);
    const after = cpu();
    const dbCpuS = backends ? await backends.stop() : NaN;
    const perJob = (s: number) => (s * 1000) / JOBS;
    return {
      ...warm,
      cold: cold.jobsPerSec,
      webMs: perJob(after[0]! - before[0]!),
      workerMs: perJob(after.slice(1).reduce((a, b) => a + b, 0) - before.slice(1).reduce((a, b) => a + b, 0)),
      dbMs: perJob(dbCpuS),
    };
  } finally {
    await cleanUp(children, [queue]);
    await db.drop();
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-bench-pg-"));
const template = await migratedTemplate(dir);
const rows: string[] = [];
let failed = false;
const measure = async (
  label: string,
  ...args: Parameters<typeof run> extends [...infer A, string, string] ? A : never
) => {
  const results: Awaited<ReturnType<typeof run>>[] = [];
  for (let i = 0; i < RUNS; i++) results.push(await run(...args, template, dir));
  const mid = (f: (r: (typeof results)[number]) => number, digits = 0) => median(results.map(f)).toFixed(digits);
  rows.push(
    `${label.padEnd(52)} ${mid((r) => r.jobsPerSec).padStart(6)} jobs/s (cold ${mid((r) => r.cold).padStart(4)})   submit p99 ${mid((r) => r.p99Ms, 1).padStart(6)} ms` +
      `   CPU ms/job web ${mid((r) => r.webMs, 2)} worker ${mid((r) => r.workerMs, 2)} database ${mid((r) => r.dbMs, 2)}`,
  );
  return results;
};
const jobs = (results: Awaited<ReturnType<typeof run>>[]) => median(results.map((r) => r.jobsPerSec));
try {
  for (const latency of [0, 100]) {
    const sqlite = await measure(`SQLite, 1 worker, dog.ceo ${latency} ms`, "sqlite", latency, 1, undefined);
    const postgres = await measure(`PostgreSQL, 1 worker, dog.ceo ${latency} ms`, "postgres", latency, 1, undefined);
    // Each run's PostgreSQL against the SQLite run just before it: the machine is shared.
    const ratios = postgres.map((r, i) => (100 * r.jobsPerSec) / sqlite[i]!.jobsPerSec);
    const p99 = median(postgres.map((r) => r.p99Ms));
    const missed = median(ratios) < 85 || p99 > 50;
    failed ||= missed;
    rows.push(
      `  PostgreSQL / SQLite at ${latency} ms: ${median(ratios).toFixed(1)}% (runs ${ratios.map((r) => r.toFixed(1)).join(" / ")}; target >= 85%), submit p99 ${p99.toFixed(1)} ms (target <= 50): ${missed ? "MISSED" : "met"}`,
    );
  }
  if (SCALING) {
    const one = jobs(await measure("PostgreSQL, 1 worker x 4 in flight, dog.ceo 100 ms", "postgres", 100, 1, "4"));
    const two = jobs(await measure("PostgreSQL, 2 workers x 4 in flight, dog.ceo 100 ms", "postgres", 100, 2, "4"));
    const ratio = two / one;
    failed ||= ratio < 1.7;
    rows.push(`two workers / one: ${ratio.toFixed(2)}x (target >= 1.7x) ${ratio < 1.7 ? "MISSED" : "met"}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.log(
  `GenDog bench on PostgreSQL: ${JOBS} jobs per run, warm (after ${JOBS} cold and ${WARM_UP} more), 10 clients, medians of ${RUNS}, web and worker ${entryMode().mode}\n${rows.join("\n")}`,
);
process.exit(failed ? 1 : 0);
