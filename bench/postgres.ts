// `npx tsx bench/postgres.ts` (also run by `npm run bench`): the load scenario on
// PostgreSQL beside SQLite, and one worker process against two, in the same run.
//  - SQLite vs PostgreSQL: one web + one worker, 0 ms and 100 ms dog.ceo latency.
//  - One worker vs two at 100 ms, on PostgreSQL, each with WORKER_CONCURRENCY=4: on this
//    one 2-core machine two default workers (128 jobs each in flight) would only share the
//    CPU that the web, PostgreSQL and RabbitMQ also use, so the workers are made
//    latency-bound (4 jobs / 100 ms = 40 jobs/s each), far below what the rest can take:
//    then what a second worker adds is what a second worker host adds. Target: >= 1.7x.
// Medians of BENCH_RUNS (3); BENCH_JOBS (1000) per run. PostgreSQL: the local server as
// its trusted superuser (BENCH_POSTGRES_URL); a database per run, dropped after.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import pg from "pg";
import { freshDatabase, migratedTemplate } from "./db.ts";
import { drive, median } from "./load.ts";
import { AMQP_URL, consumers, entryMode, freePort, httpOk, startChild, waitUntil, type Child } from "./processes.ts";
import { cleanUp, startDogApi } from "./stack.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const ADMIN = process.env.BENCH_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const JOB = { breed: "hound", limit: 10 };

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
        return db.prepare("SELECT count(*) AS n, max(finishedAt) AS last FROM Task WHERE state = 'SUCCESS'").get() as { n: number; last: string | null };
      } finally {
        db.close();
      }
    };
    return { url: `file:${file}`, finished, drop: async () => {} };
  }
  const name = `gendog_bench_${randomBytes(4).toString("hex")}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = Object.assign(new URL(ADMIN), { pathname: `/${name}` }).toString();
  const finished = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT count(*)::int AS n, to_char(max("finishedAt"), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last FROM "Task" WHERE state = 'SUCCESS'`);
      return rows[0] as { n: number; last: string | null };
    } finally {
      await client.end();
    }
  };
  return { url, finished, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** One run: jobs/s from the first submit to the last SUCCESS, and the submits' p99. */
async function run(kind: "sqlite" | "postgres", latencyMs: number, workers: number, concurrency: string | undefined, template: string, dir: string) {
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
    const started = Date.now();
    const submit = await drive({ url: `http://127.0.0.1:${port}/api/tasks`, method: "POST", body: JOB, amount: JOBS, connections: 10, deadlineMs: 180_000 });
    const deadline = Date.now() + 180_000;
    let done = await db.finished();
    while (done.n < JOBS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      done = await db.finished();
    }
    if (done.n < JOBS || !done.last) throw new Error(`${kind}: only ${done.n} of ${JOBS} tasks succeeded`);
    return { jobsPerSec: JOBS / ((Date.parse(done.last) - started) / 1000), p99Ms: submit.p99Ms };
  } finally {
    await cleanUp(children, [queue]);
    await db.drop();
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-bench-pg-"));
const template = await migratedTemplate(dir);
const rows: string[] = [];
let failed: boolean;
const measure = async (label: string, ...args: Parameters<typeof run> extends [...infer A, string, string] ? A : never) => {
  const results = [];
  for (let i = 0; i < RUNS; i++) results.push(await run(...args, template, dir));
  const jobs = median(results.map((r) => r.jobsPerSec));
  rows.push(
    `${label.padEnd(52)} ${jobs.toFixed(0).padStart(6)} jobs/s   submit p99 ${median(results.map((r) => r.p99Ms))
      .toFixed(1)
      .padStart(6)} ms`,
  );
  return jobs;
};
try {
  for (const latency of [0, 100]) {
    await measure(`SQLite, 1 worker, dog.ceo ${latency} ms`, "sqlite", latency, 1, undefined);
    await measure(`PostgreSQL, 1 worker, dog.ceo ${latency} ms`, "postgres", latency, 1, undefined);
  }
  const one = await measure("PostgreSQL, 1 worker x 4 in flight, dog.ceo 100 ms", "postgres", 100, 1, "4");
  const two = await measure("PostgreSQL, 2 workers x 4 in flight, dog.ceo 100 ms", "postgres", 100, 2, "4");
  const ratio = two / one;
  failed = ratio < 1.7;
  rows.push(`two workers / one: ${ratio.toFixed(2)}x (target >= 1.7x) ${failed ? "MISSED" : "met"}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.log(`GenDog bench on PostgreSQL: ${JOBS} jobs per run, 10 clients, medians of ${RUNS}, web and worker ${entryMode().mode}\n${rows.join("\n")}`);
process.exit(failed ? 1 : 0);
