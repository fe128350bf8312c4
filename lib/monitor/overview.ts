// What the monitor shows about the queue: the broker's own counts, plus what only GenDog
// knows (jobs still in the outbox, jobs the live workers hold).
import { cachedFor } from "../platform/cachedFor.ts";
import { MAX_WORKER_CONCURRENCY } from "../platform/config.ts";
import type { WorkerRegistry } from "./workerRegistry.ts";

/** What the broker says of the work queue (tasks/queue.ts asks it). */
export interface QueueStats {
  queue: string;
  /** People's jobs waiting in the work queue. */
  ready: number;
  /** Reruns (tasks sent again by hand) waiting in their own lane, Q.bulk. */
  reruns?: number;
  consumers: number;
  retrying: number;
  dead: number;
}

export interface MonitorDeps {
  queue: { stats(): Promise<QueueStats> };
  outbox: { pending(): Promise<number> };
  workers: WorkerRegistry;
}

const STATS_TTL_MS = 1000;
/** A page waits this long for a fresh answer, then takes the last one if it is under STATS_STALE_MS old. */
const STATS_WAIT_MS = 50;
const STATS_STALE_MS = 5000;

/**
 * Asks the broker at most once a second, however many pages poll. A page waits for a fresh
 * answer only briefly when a recent one is at hand: under load the broker is slow to answer,
 * and every /tasks would wait for it.
 */
export function queueMonitor(deps: MonitorDeps) {
  const times = { ttlMs: STATS_TTL_MS, staleMs: STATS_STALE_MS, waitMs: STATS_WAIT_MS };
  const brokerStats = cachedFor<void, QueueStats | null>(times, () => deps.queue.stats().catch(() => null));
  const overview = async () => {
    const [stats, waitingInOutbox] = await Promise.all([brokerStats(), deps.outbox.pending()]);
    return {
      broker: { connected: stats !== null },
      queue: stats?.queue ?? null,
      ready: stats?.ready ?? null,
      reruns: stats?.reruns ?? null,
      // RabbitMQ's AMQP interface does not report unacked messages (only its management
      // plugin does); the live workers' heartbeats say how many jobs they hold. Heartbeats can
      // be forged, the consumer count cannot: each worker is one consumer holding at most its
      // prefetch.
      unacked: Math.min(deps.workers.inFlight(), stats ? stats.consumers * MAX_WORKER_CONCURRENCY : Infinity),
      consumers: stats?.consumers ?? null,
      retrying: stats?.retrying ?? null,
      dead: stats?.dead ?? null,
      waitingInOutbox,
    };
  };
  /** After one of the monitor's actions (a purge): the next page asks the broker, not the last answer. */
  const forget = () => brokerStats.forget();
  return Object.assign(overview, { forget });
}

export type QueueOverview = Awaited<ReturnType<ReturnType<typeof queueMonitor>>>;
