// The measured scenarios, each on fresh child processes it always stops: the Express floor,
// the job pipeline (one web + one worker, as `npm start` runs them) and the page views.
import { PHOTOS_PER_PAGE } from "../lib/useCases/gallery.ts";
import { freshDatabase, seed, waitForTasks } from "./db.ts";
import { alternatingP99, drive, type LoadResult } from "./load.ts";
import { freePort, httpOk, procStats, startChild, waitUntil, type Child } from "./processes.ts";
import { cleanUp, startApp, startDogApi } from "./stack.ts";

const CLIENTS = 10;
const JOB = { breed: "hound", limit: 10 };
export const RUN_TIMEOUT_MS = 180_000;

export interface FloorResult {
  reqPerSec: number;
  p99Ms: number;
}

/** A bare Express app, warmed up, then driven by the same clients for 3 seconds. */
export async function floorRun(): Promise<FloorResult> {
  const children: Child[] = [];
  try {
    const port = await freePort();
    children.push(startChild("floor", ["--import", "tsx", "bench/floor.ts"], { PORT: String(port) }));
    const url = `http://127.0.0.1:${port}`;
    await waitUntil("the floor app", httpOk(`${url}/healthz`), 30_000, children[0]);
    const target = { url: `${url}/api/tasks`, method: "POST" as const, body: JOB, connections: CLIENTS };
    await drive({ ...target, amount: 500 });
    const load = await drive({ ...target, durationS: 3 });
    if (load.failed) throw new Error(`floor: ${load.failed} requests failed ${JSON.stringify(load.statuses)}`);
    return { reqPerSec: load.reqPerSec, p99Ms: load.p99Ms };
  } finally {
    await cleanUp(children, []);
  }
}

export interface ProcessUse {
  rssMb: number;
  cpuS: number;
  /** CPU spent during the load (start-up excluded), per job. */
  cpuMsPerJob: number;
}

export interface PipelineResult {
  jobsPerSec: number;
  submit: LoadResult;
  web: ProcessUse;
  worker: ProcessUse;
  /** The same N jobs on the fresh processes, before the warm-up: start-up and JIT included. */
  cold: { jobsPerSec: number; submitP99Ms: number };
  sampleCreatedAt: unknown;
}

/** Jobs run between the cold and the measured phase, unmeasured (the floor is warmed up too). */
export const WARM_UP_JOBS = 2000;

/**
 * N jobs from 10 keep-alive clients, three times on the same web and worker: cold (fresh
 * processes, reported apart), a warm-up of WARM_UP_JOBS, then the measured one. Each
 * phase's clock runs from its first submit to its last SUCCESS; CPU is the measured phase's.
 */
export async function pipelineRun(
  template: string,
  dir: string,
  jobs: number,
  latencyMs: number,
  warmUpJobs = WARM_UP_JOBS,
): Promise<PipelineResult> {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  const children: Child[] = [];
  const queues: string[] = [];
  try {
    const dogApiUrl = await startDogApi(children, latencyMs);
    const dbFile = await freshDatabase(template, dir, `pipeline-${latencyMs}ms-${Date.now()}`);
    const app = await startApp(children, queues, dbFile, dogApiUrl, true);
    const pids = { web: app.web.pid, worker: app.worker!.pid };
    let submitted = 0;
    const phase = async (amount: number) => {
      const started = Date.now();
      const submit = await drive({
        url: `${app.url}/api/tasks`,
        method: "POST",
        body: JOB,
        amount,
        connections: CLIENTS,
        deadlineMs: deadline - Date.now(),
      });
      if (submit.ok < amount)
        throw new Error(
          `only ${submit.ok} of ${amount} submits accepted (${submit.failed} failed: ${JSON.stringify(submit.statuses)})`,
        );
      submitted += amount;
      const drained = await waitForTasks(dbFile, submitted, deadline);
      if (drained.failed) throw new Error(`${drained.failed} of ${submitted} tasks did not end SUCCESS`);
      return { submit, drained, jobsPerSec: amount / ((drained.lastFinishedMs - started) / 1000) };
    };
    const cold = await phase(jobs);
    if (warmUpJobs > 0) await phase(warmUpJobs);
    const before = { web: procStats(pids.web), worker: procStats(pids.worker) };
    const measured = await phase(jobs);
    const use = (name: "web" | "worker"): ProcessUse => {
      const after = procStats(pids[name]);
      return { ...after, cpuMsPerJob: ((after.cpuS - before[name].cpuS) * 1000) / jobs };
    };
    return {
      jobsPerSec: measured.jobsPerSec,
      submit: measured.submit,
      web: use("web"),
      worker: use("worker"),
      cold: { jobsPerSec: cold.jobsPerSec, submitP99Ms: cold.submit.p99Ms },
      sampleCreatedAt: measured.drained.sampleCreatedAt,
    };
  } finally {
    await cleanUp(children, queues);
  }
}

export const PAGES = ["gallery first", "gallery last", "/tasks", "/api/tasks"] as const;
export type PageName = (typeof PAGES)[number];
export type PageRun = Record<PageName, { emptyP99Ms: number; fullP99Ms: number }>;

const pagePaths = (photos: number): Record<PageName, string> => ({
  "gallery first": "/",
  "gallery last": `/?page=${Math.max(1, Math.ceil(photos / PHOTOS_PER_PAGE))}`,
  "/tasks": "/tasks",
  "/api/tasks": "/api/tasks",
});

/** Each page's p99 with 100,000 photos and 20,000 tasks stored and nearly empty, `runs` times, the two taking turns. */
export async function pagesRun(template: string, dir: string, runs: number, requests: number): Promise<PageRun[]> {
  const children: Child[] = [];
  const queues: string[] = [];
  // Nearly empty, yet each page as long as the full one's: a page of tasks (20 in the API,
  // 25 on /tasks), and a first and a last gallery page of 48 and 16 photos (100,000 is
  // 2,083 pages of 48 and 16 over). With fewer, the ratio compared 5 tasks against 20.
  const sizes = { empty: { photos: 2 * PHOTOS_PER_PAGE + 16, tasks: 30 }, full: { photos: 100_000, tasks: 20_000 } };
  try {
    const dogApiUrl = await startDogApi(children, 0);
    const apps = { empty: "", full: "" };
    for (const size of ["empty", "full"] as const) {
      const file = await freshDatabase(template, dir, `pages-${size}`);
      seed(file, sizes[size].photos, sizes[size].tasks); // before the web starts, as the brief asks
      apps[size] = (await startApp(children, queues, file, dogApiUrl, false)).url;
    }
    const urls = (page: PageName) => ({
      empty: apps.empty + pagePaths(sizes.empty.photos)[page],
      full: apps.full + pagePaths(sizes.full.photos)[page],
    });
    for (const page of PAGES) await alternatingP99(urls(page), 50); // warm-up: JIT, template cache
    const results: PageRun[] = [];
    for (let run = 0; run < runs; run++) {
      const result = {} as PageRun;
      for (const page of PAGES) {
        const { empty, full } = await alternatingP99(urls(page), requests);
        result[page] = { emptyP99Ms: empty, fullP99Ms: full };
      }
      results.push(result);
    }
    return results;
  } finally {
    await cleanUp(children, queues);
  }
}
