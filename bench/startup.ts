// `npx tsx bench/startup.ts`: how long web and worker take to be ready, and their RSS once
// ready, run from the sources through tsx and from the compiled dist/ (npm run build first).
// Medians of STARTUP_RUNS (default 5), each on a fresh database file and queue.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { migratedTemplate, freshDatabase } from "./db.ts";
import { AMQP_URL, consumers, deleteQueues, freePort, httpOk, procStats, startChild, waitUntil } from "./processes.ts";

const RUNS = Number(process.env.STARTUP_RUNS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MODES = {
  tsx: { web: ["--import", "tsx", "web.ts"], worker: ["--import", "tsx", "tasks/worker.ts"] },
  compiled: { web: ["dist/web.js"], worker: ["dist/worker.js"] },
};

const dir = mkdtempSync(path.join(os.tmpdir(), "gendog-startup-"));
const template = await migratedTemplate(dir);
const results: string[] = [];
for (const [mode, entries] of Object.entries(MODES)) {
  const stats = {
    web: { ms: [] as number[], rss: [] as number[] },
    worker: { ms: [] as number[], rss: [] as number[] },
  };
  for (let run = 0; run < RUNS; run++) {
    const queue = `gendog.bench.${randomBytes(4).toString("hex")}`;
    const port = await freePort();
    const env = {
      DATABASE_URL: `file:${await freshDatabase(template, dir, `${mode}-${run}`)}`,
      AMQP_URL,
      QUEUE_NAME: queue,
      PORT: String(port),
      LOG_LEVEL: "warn",
      NODE_ENV: "production",
      SECURE_COOKIES: "false",
      DOG_API_URL: "http://127.0.0.1:9/api",
    };
    let started = performance.now();
    const web = startChild("web", entries.web, env);
    await waitUntil("the web to be ready", httpOk(`http://127.0.0.1:${port}/healthz`), 60_000, web);
    stats.web.ms.push(performance.now() - started);
    started = performance.now();
    const worker = startChild("worker", entries.worker, env);
    await waitUntil("the worker to consume", async () => (await consumers(queue)) > 0, 60_000, worker);
    stats.worker.ms.push(performance.now() - started);
    stats.web.rss.push(procStats(web.pid).rssMb);
    stats.worker.rss.push(procStats(worker.pid).rssMb);
    await Promise.all([web.stop(), worker.stop()]);
    await deleteQueues(queue).catch(() => {});
  }
  for (const name of ["web", "worker"] as const) {
    results.push(
      `${mode.padEnd(9)} ${name.padEnd(7)} ready in ${median(stats[name].ms).toFixed(0).padStart(5)} ms, RSS ${median(stats[name].rss).toFixed(0).padStart(4)} MB (medians of ${RUNS})`,
    );
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(results.join("\n"));
