// Prometheus metrics (prom-client). Each process has a registry of its own (never the
// library's global one), labelled with the process it describes, so tests can build
// several in one process. The web reports what it can read for the whole fleet when it is
// scraped (tasks by state, the queue, the outbox); a worker counts what it does itself
// (attempts, time in the queue, dog.ceo calls). README's "Metrics" lists them all.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DogApiError } from "../dogs/dogApi.ts";
import type { QueueOverview } from "../monitor/overview.ts";
import type { TaskState } from "../lifecycle/shapes.ts";

function registryFor(process: "web" | "worker"): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process });
  collectDefaultMetrics({ register: registry, prefix: "gendog_" });
  return registry;
}

// ---------------------------------------------------------------- web

export interface WebMetricSources {
  taskCounts: () => Promise<Partial<Record<TaskState, number>>>;
  monitor: () => Promise<QueueOverview>;
  openStreams: () => number;
  workers: () => { status: string }[];
}

export function webMetrics(sources: WebMetricSources): Registry {
  const registry = registryFor("web");
  new Gauge({
    name: "gendog_tasks",
    help: "Tasks in the database, by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [state, count] of Object.entries(await sources.taskCounts())) this.set({ state }, count);
    },
  });
  const overview = once(sources.monitor);
  const queue = (name: string, help: string, pick: (o: QueueOverview) => number | null) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const value = pick(await overview());
        // Unknown while the broker is unreachable: left out rather than reported as 0
        // (removed, not reset: a gauge without labels that is reset still reports 0).
        if (value === null) this.remove({});
        else this.set(value);
      },
    });
  queue("gendog_broker_up", "1 while this web reaches RabbitMQ", (o) => (o.broker.connected ? 1 : 0));
  queue("gendog_queue_ready", "Jobs waiting in the work queue", (o) => o.ready);
  queue("gendog_queue_retrying", "Jobs waiting out a retry delay in the retry queues", (o) => o.retrying);
  queue("gendog_queue_dead", "Jobs in the dead-letter queue", (o) => o.dead);
  queue("gendog_queue_consumers", "Consumers on the work queue", (o) => o.consumers);
  queue("gendog_queue_unacked", "Jobs the live workers hold (from their heartbeats)", (o) => o.unacked);
  queue("gendog_outbox_backlog", "Accepted jobs the broker has not confirmed yet", (o) => o.waitingInOutbox);
  new Gauge({
    name: "gendog_sse_clients",
    help: "Live event streams open on this web",
    registers: [registry],
    collect() {
      this.set(sources.openStreams());
    },
  });
  new Gauge({
    name: "gendog_workers",
    help: "Workers this web has heard from in the last hour, by status (alive, offline: said goodbye, lost: went silent)",
    labelNames: ["status"],
    registers: [registry],
    collect() {
      const workers = sources.workers();
      for (const status of ["alive", "offline", "lost"])
        this.set({ status }, workers.filter((w) => w.status === status).length);
    },
  });
  return registry;
}

/** One monitor call per scrape, however many gauges read it. */
function once<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= read().finally(() => setTimeout(() => (pending = undefined), 0));
    return pending;
  };
}

// ---------------------------------------------------------------- worker

export type AttemptOutcome = "SUCCESS" | "FAILURE" | "RETRY" | "SKIPPED" | "REVOKED";

/** What the job handler and the dog.ceo client report; a no-op where nobody listens. */
export interface WorkMetrics {
  attemptFinished(outcome: AttemptOutcome, seconds: number): void;
  /** A task's first run started this long after the broker took its job. */
  queueWait(seconds: number): void;
  dogApiCall(seconds: number, error?: DogApiError): void;
}

export const noMetrics: WorkMetrics = { attemptFinished() {}, queueWait() {}, dogApiCall() {} };

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function workerMetrics(): { registry: Registry; metrics: WorkMetrics } {
  const registry = registryFor("worker");
  const attempts = new Counter({
    name: "gendog_attempts_total",
    help: "Attempts finished, by outcome",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const attemptSeconds = new Histogram({
    name: "gendog_attempt_duration_seconds",
    help: "How long attempts took, by outcome",
    labelNames: ["outcome"],
    buckets: SECONDS,
    registers: [registry],
  });
  const waitSeconds = new Histogram({
    name: "gendog_queue_wait_seconds",
    help: "From the broker taking a job to a worker starting it (first attempts)",
    buckets: SECONDS,
    registers: [registry],
  });
  const dogSeconds = new Histogram({
    name: "gendog_dogceo_request_duration_seconds",
    help: "dog.ceo calls, by result",
    labelNames: ["result"],
    buckets: SECONDS,
    registers: [registry],
  });
  const dogErrors = new Counter({
    name: "gendog_dogceo_errors_total",
    help: "dog.ceo calls that failed, by kind and reason",
    labelNames: ["kind", "reason"],
    registers: [registry],
  });
  // Every label value exists from the start, so a rate over them works before the first one happens.
  for (const outcome of ["SUCCESS", "FAILURE", "RETRY", "SKIPPED", "REVOKED"]) attempts.inc({ outcome }, 0);
  return {
    registry,
    metrics: {
      attemptFinished(outcome, seconds) {
        attempts.inc({ outcome });
        attemptSeconds.observe({ outcome }, seconds);
      },
      queueWait(seconds) {
        waitSeconds.observe(Math.max(0, seconds));
      },
      dogApiCall(seconds, error) {
        dogSeconds.observe({ result: error ? "error" : "ok" }, seconds);
        if (error) dogErrors.inc({ kind: error.kind, reason: reasonOf(error) });
      },
    },
  };
}

/** A small fixed set of reasons, so a label never takes dog.ceo's words. */
function reasonOf(error: DogApiError): string {
  if (error.status !== undefined) return `http_${Math.floor(error.status / 100)}xx`;
  if (/timeout|did not (finish|answer)/i.test(error.message)) return "timeout";
  if (/unexpected|not JSON|larger than/i.test(error.message)) return "bad_reply";
  return "network";
}
