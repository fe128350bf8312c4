// What the monitor shows about the queue: the broker's own counts, plus what only GenDog
// knows (jobs still in the outbox, jobs the live workers hold).
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
 * answer only briefly when a recent one is at hand (under load, asking the broker took
 * 1.4 s and every /tasks waited for it).
 */
export function queueMonitor(deps: MonitorDeps) {
  let last: { at: number; stats: QueueStats | null } | undefined;
  let refreshing: Promise<QueueStats | null> | undefined;
  // Bumped by forget(): an answer asked for before it is not kept.
  let generation = 0;
  const brokerStats = async (): Promise<QueueStats | null> => {
    const age = last ? Date.now() - last.at : Infinity;
    if (age > STATS_TTL_MS && !refreshing) {
      const asked = generation;
      refreshing = deps.queue
        .stats()
        .catch(() => null)
        .then((stats) => {
          if (asked === generation) {
            last = { at: Date.now(), stats };
            refreshing = undefined;
          }
          return stats;
        });
    }
    if (!refreshing) return last!.stats;
    if (age > STATS_STALE_MS) return refreshing;
    const fallback = last!.stats;
    return Promise.race([refreshing, new Promise<QueueStats | null>((resolve) => setTimeout(() => resolve(fallback), STATS_WAIT_MS).unref())]);
  };
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
  const forget = () => {
    generation += 1;
    last = undefined;
    refreshing = undefined;
  };
  return Object.assign(overview, { forget });
}

export type QueueOverview = Awaited<ReturnType<ReturnType<typeof queueMonitor>>>;
