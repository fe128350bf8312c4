// `npm run bench`: speed targets for GenDog, measured on the real parts (RabbitMQ, SQLite,
// the dog.ceo stand-in). The machine is shared and noisy, so every number is the median
// of several runs, and the comparisons are ratios measured in the same run.
//
//  1. worker concurrency: 40 jobs against a dog.ceo that takes 200 ms a call, with
//     WORKER_CONCURRENCY=1 and =8. Target: 8 is at least 4x faster (jobs await I/O).
//  2. submit latency: POST /api/tasks, including the broker's publish confirm.
//  3. gallery page: GET / with 2,000 photos stored (one page of 48 rendered).
import { performance } from "node:perf_hooks";
import { startFakeDogApi } from "../dev/fake-dog-api.ts";
import { startStack, waitFor } from "../tests/support/stack.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const results: string[] = [];
let failed = false;

async function drainTime(concurrency: number, jobs: number): Promise<number> {
  const fake = await startFakeDogApi();
  fake.setFaultRate({ slow: 1 }, 1); // every image call answers late (the stand-in's slow delay)
  const stack = await startStack({ fake, workers: 1, env: { WORKER_CONCURRENCY: String(concurrency), DOG_API_TIMEOUT_MS: "5000" } });
  try {
    const started = performance.now();
    for (let i = 0; i < jobs; i++) await stack.http().post("/api/tasks").send({ breed: "hound", limit: 3 }).expect(202);
    await waitFor("all jobs to finish", async () => (await stack.db.task.count({ where: { state: "SUCCESS" } })) === jobs, 120_000);
    return performance.now() - started;
  } finally {
    await stack.stop();
    await fake.close();
  }
}

async function concurrencyBench() {
  const one: number[] = [];
  const eight: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    one.push(await drainTime(1, 40));
    eight.push(await drainTime(8, 40));
  }
  const ratio = median(one) / median(eight);
  results.push(`worker concurrency: 40 jobs, slow dog.ceo: concurrency 1 median ${median(one).toFixed(0)} ms, concurrency 8 median ${median(eight).toFixed(0)} ms, speed-up ${ratio.toFixed(1)}x (target >= 4x)`);
  if (ratio < 4) failed = true;
}

async function submitAndGalleryBench() {
  const stack = await startStack({ workers: 0 });
  try {
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
      latencies.push(performance.now() - t);
    }
    results.push(`submit (write task + outbox, publish, broker confirm): 200 requests, median ${median(latencies).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms`);

    await stack.db.photo.createMany({
      data: Array.from({ length: 2000 }, (_, i) => ({ url: `${stack.fake.origin}/images/breeds/pug/bench_${i}.svg`, breed: "pug" })),
    });
    const pages: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await stack.http().get("/").expect(200);
      pages.push(performance.now() - t);
    }
    results.push(`gallery page (2,000 photos stored, 48 shown): 50 requests, median ${median(pages).toFixed(1)} ms, p95 ${percentile(pages, 95).toFixed(1)} ms (target median < 50 ms)`);
    if (median(pages) >= 50) failed = true;
  } finally {
    await stack.stop();
  }
}

await concurrencyBench();
await submitAndGalleryBench();
console.log(results.join("\n"));
process.exit(failed ? 1 : 0);
