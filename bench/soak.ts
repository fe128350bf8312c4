// `npm run bench` (also alone: `npm run bench:soak`): does GenDog hold a mixed load and give
// back what it took? Against `npm start`'s processes (one web, one worker, compiled when
// dist/ exists): SOAK_CLIENTS (200) concurrent clients mixing page views, API reads and submits for
// SOAK_SECONDS (60), beside SOAK_STREAMS (200) open event streams. Reports requests served, 5xx (target
// 0), p99 per route, and RSS and open descriptors of web and worker after a warm-up and
// after the load has drained (target: back within 10%). Exits 1 when a target is missed.
import { readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Agent, request } from "undici";
import { freshDatabase, migratedTemplate } from "./db.ts";
import { percentile } from "./load.ts";
import { procStats, ROOT, sleep, startChild, waitUntil, type Child } from "./processes.ts";
import { cleanUp, startApp, startDogApi } from "./stack.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 200);
const STREAMS = Number(process.env.SOAK_STREAMS ?? 200);
const log = (text: string) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${text}`);

type Route = { name: string; method: "GET" | "POST"; path: (ids: string[]) => string; body?: unknown; weight: number };
const ROUTES: Route[] = [
  { name: "GET /", method: "GET", path: () => "/", weight: 30 },
  { name: "GET /?page=3", method: "GET", path: () => "/?page=3", weight: 5 },
  { name: "GET /tasks", method: "GET", path: () => "/tasks", weight: 10 },
  {
    name: "GET /tasks/:id",
    method: "GET",
    path: (ids) => `/tasks/${ids[Math.floor(Math.random() * ids.length)] ?? "x"}`,
    weight: 10,
  },
  { name: "GET /api/tasks", method: "GET", path: () => "/api/tasks", weight: 15 },
  { name: "GET /api/queue", method: "GET", path: () => "/api/queue", weight: 5 },
  { name: "GET /healthz", method: "GET", path: () => "/healthz", weight: 5 },
  { name: "POST /api/tasks", method: "POST", path: () => "/api/tasks", body: { breed: "hound", limit: 3 }, weight: 20 },
];
const pick = (() => {
  const total = ROUTES.reduce((sum, r) => sum + r.weight, 0);
  return () => {
    let roll = Math.random() * total;
    return ROUTES.find((r) => (roll -= r.weight) < 0) ?? ROUTES[0]!;
  };
})();

interface Sample {
  rssMb: number;
  fds: number;
}
const sample = (pid: number): Sample => ({ rssMb: procStats(pid).rssMb, fds: readdirSync(`/proc/${pid}/fd`).length });

/** CLIENTS closed loops over the route mix until `until`; per-route latencies and statuses. */
async function mixedLoad(url: string, until: number, ids: string[]) {
  const agent = new Agent({ connections: CLIENTS, pipelining: 1 });
  const byRoute = new Map<string, { ms: number[]; statuses: Record<string, number> }>(
    ROUTES.map((r) => [r.name, { ms: [], statuses: {} }]),
  );
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  const client = async () => {
    while (Date.now() < until) {
      const route = pick();
      const started = performance.now();
      try {
        const res = await request(url + route.path(ids), {
          method: route.method,
          dispatcher: agent,
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
          ...(route.body ? { body: JSON.stringify(route.body), headers: { "content-type": "application/json" } } : {}),
        });
        const text = await res.body.text();
        const entry = byRoute.get(route.name)!;
        entry.ms.push(performance.now() - started);
        entry.statuses[res.statusCode] = (entry.statuses[res.statusCode] ?? 0) + 1;
        if (route.method === "POST" && res.statusCode === 202 && ids.length < 5000)
          ids.push((JSON.parse(text) as { id: string }).id);
      } catch (err) {
        errors += 1;
        const kind = `${route.name}: ${(err as { code?: string }).code ?? (err as Error).message}`;
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  await agent.close();
  return { byRoute, errors, errorKinds };
}

const children: Child[] = [];
const queues: string[] = [];
const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-soak-"));
let failed: boolean;
try {
  const template = await migratedTemplate(dir);
  const dogApi = await startDogApi(children, 20);
  // Every client here is 127.0.0.1: the per-client stream cap must let the 200 streams in.
  const app = await startApp(children, queues, await freshDatabase(template, dir, "soak"), dogApi, true, {
    EVENT_STREAMS_PER_CLIENT: String(Math.max(10, STREAMS * 2)),
    ...JSON.parse(process.env.SOAK_ENV ?? "{}"),
  });
  const ids: string[] = [];
  log("warm-up: 10 s of the same mix, so the heaps are sized before the first sample");
  await mixedLoad(app.url, Date.now() + 10_000, ids);
  await sleep(5000);
  const before = { web: sample(app.web.pid), worker: sample(app.worker!.pid) };
  log(`${STREAMS} event streams open, ${CLIENTS} clients for ${SECONDS} s`);
  const streams = startChild("streams", ["--import", "tsx", "bench/streams.ts"], {
    URL: app.url,
    STREAMS: String(STREAMS),
  });
  const started = performance.now();
  // The load generator shares the machine: if its own event loop stalls, its timeouts are its own.
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  const { byRoute, errors, errorKinds } = await mixedLoad(app.url, Date.now() + SECONDS * 1000, ids);
  const elapsed = (performance.now() - started) / 1000;
  lag.disable();
  const clientLag = { p99Ms: lag.percentile(99) / 1e6, maxMs: lag.max / 1e6 };
  const during = { web: sample(app.web.pid), worker: sample(app.worker!.pid) };
  const streamed = streams.tail();
  await streams.stop();
  log("load over; waiting for the worker to drain the queue, then 10 s for the sockets to close");
  const drained = await waitUntil(
    "the queue to drain",
    async () => {
      const q = (await (await fetch(`${app.url}/api/queue`)).json()) as {
        ready: number;
        unacked: number;
        retrying: number;
        waitingInOutbox: number;
      };
      return q.ready + q.unacked + q.retrying + q.waitingInOutbox === 0;
    },
    180_000,
  ).then(
    () => true,
    () => false,
  );
  if (!drained) log("the queue did not drain within 180 s; sampling anyway");
  await sleep(10_000);
  const after = { web: sample(app.web.pid), worker: sample(app.worker!.pid) };

  const served = [...byRoute.values()].reduce((sum, r) => sum + r.ms.length, 0);
  const fiveXx = [...byRoute.values()].reduce(
    (sum, r) =>
      sum +
      Object.entries(r.statuses)
        .filter(([s]) => Number(s) >= 500)
        .reduce((n, [, c]) => n + c, 0),
    0,
  );
  const lines = [
    `GenDog soak: ${CLIENTS} clients for ${SECONDS} s beside ${STREAMS} open event streams (one web, one worker, stand-in at 20 ms)`,
    `streams (open, bytes read): ${
      streamed
        .split("\n")
        .at(-1)
        ?.replace(/^.*\] /, "") ?? "?"
    }`,
    `load generator's event-loop delay: p99 ${clientLag.p99Ms.toFixed(0)} ms, max ${clientLag.maxMs.toFixed(0)} ms`,
    `requests served: ${served} (${(served / elapsed).toFixed(0)}/s), 5xx: ${fiveXx} (target 0), client errors/timeouts: ${errors}`,
    "",
    "route              requests   p50 ms   p99 ms   statuses",
    ...ROUTES.map((r) => {
      const { ms, statuses } = byRoute.get(r.name)!;
      return `${r.name.padEnd(18)} ${String(ms.length).padStart(8)} ${percentile(ms, 50).toFixed(1).padStart(8)} ${percentile(ms, 99).toFixed(1).padStart(8)}   ${JSON.stringify(statuses)}`;
    }),
    "",
    "process   RSS MB before / during / after    open fds before / during / after",
  ];
  const verdicts: string[] = [];
  for (const name of ["web", "worker"] as const) {
    const [b, d, a] = [before[name], during[name], after[name]];
    lines.push(
      `${name.padEnd(9)} ${b.rssMb.toFixed(0).padStart(6)} / ${d.rssMb.toFixed(0).padStart(6)} / ${a.rssMb.toFixed(0).padStart(6)}      ${String(b.fds).padStart(6)} / ${String(d.fds).padStart(6)} / ${String(a.fds).padStart(6)}`,
    );
    if (a.rssMb > b.rssMb * 1.1)
      verdicts.push(
        `MISSED: ${name} RSS ${a.rssMb.toFixed(0)} MB after, more than 10% over ${b.rssMb.toFixed(0)} MB before`,
      );
    if (a.fds > b.fds * 1.1 + 2) verdicts.push(`MISSED: ${name} holds ${a.fds} descriptors after, ${b.fds} before`);
  }
  if (fiveXx > 0) verdicts.push(`MISSED: ${fiveXx} answers were 5xx`);
  if (errors > 0) verdicts.push(`MISSED: ${errors} requests failed or timed out: ${JSON.stringify(errorKinds)}`);
  lines.push("", ...(verdicts.length ? verdicts : ["all soak targets met"]));
  failed = verdicts.length > 0;
  console.log(lines.join("\n"));
  const results = Object.fromEntries(
    ROUTES.map((r) => [
      r.name,
      {
        requests: byRoute.get(r.name)!.ms.length,
        p99Ms: percentile(byRoute.get(r.name)!.ms, 99),
        statuses: byRoute.get(r.name)!.statuses,
      },
    ]),
  );
  await writeFile(
    path.join(ROOT, "bench-soak.json"),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        seconds: SECONDS,
        clients: CLIENTS,
        streams: STREAMS,
        served,
        fiveXx,
        errors,
        errorKinds,
        clientLag,
        routes: results,
        before,
        during,
        after,
        verdicts,
      },
      null,
      2,
    ),
  );
} catch (err) {
  failed = true;
  console.error(`soak failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await cleanUp(children, queues);
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
