// `npm run bench`: the job pipeline under concurrent load (issue 7), against real processes:
// one web and one worker as `npm start` runs them, the machine's RabbitMQ, SQLite, and
// the dog.ceo stand-in answering at once and after 100 ms. The machine is shared and
// noisy, so each number is the median of BENCH_RUNS runs, and the targets are ratios to a
// floor measured in the same run (a bare Express app answering the same POST).
//
//   BENCH_RUNS=3           runs per scenario (medians)
//   BENCH_JOBS=1000        jobs per pipeline phase (shrink it for a quick try)
//   BENCH_WARM_UP_JOBS=2000  jobs between the cold and the measured phase (0: none)
//
// Each pipeline run measures N jobs on fresh processes (cold, reported apart), runs the
// warm-up, then measures N jobs again: the targets read that steady state, as the floor
// is read after its own warm-up.
//   BENCH_PAGE_REQUESTS=400  requests per page and size in a measurement (p99: the 4th slowest)
//
// Prints a table, writes bench-results.json, exits 1 when a target is missed.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { isSqlTime, migratedTemplate } from "./db.ts";
import { brokerConfirmRate } from "./load.ts";
import { entryMode, ROOT } from "./processes.ts";
import { LATENCIES, report, type RunData } from "./report.ts";
import { floorRun, pagesRun, pipelineRun, RUN_TIMEOUT_MS, WARM_UP_JOBS, type PageRun } from "./scenarios.ts";

const whole = (name: string, fallback: number, min = 1) => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}`);
  return n;
};
const RUNS = whole("BENCH_RUNS", 3);
const JOBS = whole("BENCH_JOBS", 1000);
const PAGE_REQUESTS = whole("BENCH_PAGE_REQUESTS", 400);
const WARM_UP = whole("BENCH_WARM_UP_JOBS", WARM_UP_JOBS, 0);
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const log = (text: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}`);

const entry = entryMode();
const how =
  entry.mode === "compiled"
    ? `compiled, as npm start runs them (${entry.web.join(" ").replace(/\S*\/dist\//, "dist/")})`
    : "tsx (node --import tsx web.ts, node --import tsx tasks/worker.ts)";
const header = `GenDog bench: ${JOBS} jobs {breed: hound, limit: 10} per phase (cold, then after ${WARM_UP} more), 10 keep-alive clients, ${RUNS} run(s); web and worker ${how}`;
log(header);

const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-bench-"));
const runs: RunData[] = [];
let pages: PageRun[];
let pageError: string | undefined;
try {
  const template = await migratedTemplate(dir);
  for (let i = 0; i < RUNS; i++) {
    const run: RunData = { pipeline: {}, errors: [] };
    runs.push(run);
    // The floor and the broker first, then the pipeline, all in the same run: the ratios compare like with like.
    await floorRun().then(
      (r) => (run.floor = r),
      (err) => run.errors.push(`floor: ${message(err)}`),
    );
    log(`run ${i + 1}: floor ${run.floor?.reqPerSec.toFixed(0)} req/s`);
    await brokerConfirmRate().then(
      (r) => (run.brokerMsgsPerSec = r),
      (err) => run.errors.push(`broker: ${message(err)}`),
    );
    for (const ms of LATENCIES) {
      try {
        const result = await pipelineRun(template, dir, JOBS, ms, WARM_UP);
        run.pipeline[ms] = result;
        log(
          `run ${i + 1}, ${ms} ms: ${result.jobsPerSec.toFixed(0)} jobs/s end to end, submit p99 ${result.submit.p99Ms.toFixed(1)} ms`,
        );
        // Seeded rows must look like the app's own (see db.ts): say so if the app's format changes.
        if (!isSqlTime(result.sampleCreatedAt))
          run.errors.push(
            `the app stores createdAt as ${JSON.stringify(result.sampleCreatedAt)}; update db.ts sqlTime`,
          );
      } catch (err) {
        run.errors.push(`pipeline at ${ms} ms (limit ${RUN_TIMEOUT_MS / 1000} s): ${message(err)}`);
        log(`run ${i + 1}, ${ms} ms: FAILED ${message(err)}`);
      }
    }
  }
  log("pages: seeding 100,000 photos and 20,000 tasks");
  pages = await pagesRun(template, dir, RUNS, PAGE_REQUESTS).catch((err) => ((pageError = message(err)), []));
} finally {
  await rm(dir, { recursive: true, force: true });
}

const { text, targets, failed } = report(header, runs, pages, pageError);
console.log(text);
const file = path.join(ROOT, "bench-results.json");
await writeFile(
  file,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      mode: entry.mode,
      jobs: JOBS,
      warmUpJobs: WARM_UP,
      runs: RUNS,
      clients: 10,
      results: runs,
      pages,
      pageError,
      targets,
    },
    null,
    2,
  ),
);
console.log(`\nwritten to ${path.relative(process.cwd(), file) || file}`);
process.exit(failed ? 1 : 0);
