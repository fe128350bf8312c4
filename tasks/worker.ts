// The worker process: consumes jobs, fetches photos from dog.ceo, stores them, and
// tells the web what happened. `npm run worker`; run several to share the work.
import { randomBytes } from "node:crypto";
import os from "node:os";
import { pathToFileURL } from "node:url";
import type { Config } from "../lib/platform/config.ts";
import { dogApiFromConfig } from "../lib/dogs/dogApi.ts";
import type { EventSink } from "../lib/live/events.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { openStore } from "../lib/store/index.ts";
import { createLifecycle } from "../lib/lifecycle/lifecycle.ts";
import { workerMetrics } from "../lib/platform/metrics.ts";
import { migrateIfNeeded } from "../lib/store/migrate.ts";
import type { Heartbeat } from "../lib/monitor/workerRegistry.ts";
import { runProcess, runSteps } from "../lib/platform/shutdown.ts";
import { controlKey } from "../lib/monitor/controlMessages.ts";
import { signHeartbeat, type HeartbeatKind } from "../lib/monitor/signedHeartbeats.ts";
import { listenForControl } from "./control.ts";
import { createJobHandler, type JobCounters } from "./job.ts";
import { serveMetrics } from "./metricsServer.ts";
import { Broker } from "./queue.ts";
import { startRecoverySweep } from "./recovery.ts";
import { startRetention } from "./retention.ts";
import { startTracing } from "../lib/platform/tracing.ts";

const HEARTBEAT_MS = 2000;
/**
 * A worker's claims and results wait up to this long to commit together (SQLite): jobs run
 * side by side, so one commit for several halves the pages written per job and the times
 * the web must re-read what changed. A few milliseconds on a job that takes a dog.ceo call.
 */
const COMMIT_WINDOW_MS = 4;

export async function startWorker(config: Config, logger: Logger) {
  const host = os.hostname();
  const pid = process.pid;
  const id = `${host}-${pid}-${randomBytes(2).toString("hex")}`;
  const log = logger.child({ worker: id });
  const stopTracing = await startTracing(config.otelEndpoint, config.otelServiceName ?? "gendog-worker");
  await migrateIfNeeded(config.databaseUrl);
  const store = await openStore(config.databaseUrl, {
    commitWindowMs: COMMIT_WINDOW_MS,
    timeoutMs: config.databaseTimeoutMs,
  });
  const dogApi = dogApiFromConfig(config);
  const broker = new Broker({
    url: config.amqpUrl,
    queueName: config.queueName,
    queueType: config.queueType,
    retry: config.retry,
    logger: log,
  });
  // A worker has no pages of its own: every event it makes is for the web processes, and
  // only while one of them has a page open.
  const events: EventSink = {
    emit: (event, scope) => scope !== "local" && broker.publishEvent(`task.${event.type}`, event),
    wanted: (scope) => scope !== "local" && broker.taskEventsHeard,
  };
  const lifecycle = createLifecycle(store, events);
  const counters: JobCounters = { done: 0, failed: 0, skipped: 0 };
  const { registry, metrics } = workerMetrics();
  const handler = createJobHandler(
    { lifecycle, dogApi, logger: log, workerId: id, retry: config.retry, imageOrigins: config.imageOrigins, metrics },
    counters,
  );
  const metricsServer =
    config.metricsPort > 0 ? await serveMetrics(registry, config.host, config.metricsPort, log) : undefined;

  const started = new Date();
  await lifecycle.workerSeen({ id, host, pid, startedAt: started });
  await lifecycle.forgetWorkersSilentFor(24 * 60 * 60_000);
  const startedAt = started.toISOString();
  // Ready means it can do its job: the broker takes its acks and the database answers
  // (the sign of life other workers' recovery sweeps read is written here too).
  const heartbeat = async (): Promise<Heartbeat> => {
    const database = await lifecycle.workerSeen({ id, host, pid, startedAt: started }).then(
      () => true,
      () => false,
    );
    const ready = broker.isConnected() && database;
    return {
      id,
      host,
      pid,
      concurrency: config.workerConcurrency,
      ...counters,
      inFlight: broker.jobsInFlight,
      startedAt,
      ready,
      paused: broker.consumingPaused,
    };
  };
  // Signed when web and workers share a key, so the web can tell them from forgeries.
  const key = controlKey(config);
  const send = (kind: HeartbeatKind, payload: Heartbeat) =>
    broker.publishEvent(kind, key ? signHeartbeat(key, kind, payload) : payload);
  const beat = () => void heartbeat().then((payload) => send("worker.heartbeat", payload));
  // The monitor's pause and resume, for every worker or this one; the next heartbeat shows it
  // took. And its stop of a running task, which this worker obeys if it holds the task.
  const control = await listenForControl({
    broker,
    key,
    workerId: id,
    startedAt: started.getTime(),
    logger: log,
    changed: beat,
    stop: handler.stop,
  });
  // Told before connecting: the first connect may come before start() is even awaited.
  broker.onConnected(beat);
  await broker.start();
  await broker.consumeJobs(handler, config.workerConcurrency);
  const recovery = startRecoverySweep({
    lifecycle,
    broker,
    logger: log,
    graceMs: config.recoveryGraceMs,
    beforeSweep: handler.writeOwedRunEnds,
  });
  const retention = startRetention({ lifecycle, logger: log, retentionDays: config.retentionDays });
  // Other workers' sweeps take a silence of recoveryGraceMs as death: beat well within it.
  const beating = setInterval(beat, Math.min(HEARTBEAT_MS, Math.floor(config.recoveryGraceMs / 3)));
  log.info(
    { queue: config.queueName, concurrency: config.workerConcurrency, dogApi: config.dogApiUrl },
    "worker started",
  );

  return {
    id,
    counters,
    /** Where this worker serves /metrics, when METRICS_PORT is set. */
    metricsPort: metricsServer?.port,
    async stop(): Promise<void> {
      clearInterval(beating);
      await control.close();
      await recovery.stop();
      await retention.stop();
      // Stop taking jobs, finish (and ack) the ones in hand, then close what they used.
      const drained = await broker.stopConsuming(config.shutdownTimeoutMs);
      if (!drained)
        log.warn(
          { inFlight: broker.jobsInFlight },
          "jobs still running at the shutdown timeout; the broker will redeliver them",
        );
      send("worker.offline", { ...(await heartbeat()), ready: false });
      await runSteps(log, [
        ["close broker", () => broker.close()],
        ["close metrics listener", () => metricsServer?.close() ?? Promise.resolve()],
        ["close dog.ceo client", () => dogApi.close()],
        ["close database", () => store.close()],
        ["flush traces", stopTracing],
      ]);
      log.info(counters, "worker stopped");
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) runProcess("worker", startWorker);
