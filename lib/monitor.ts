// What the monitor shows about the queue: the broker's own counts, plus what only GenDog
// knows (jobs still in the outbox, jobs the live workers hold).
import type { QueueStats } from "../tasks/queue.ts";
import type { WorkerRegistry } from "./workers.ts";

export interface MonitorDeps {
  queue: { stats(): Promise<QueueStats> };
  outbox: { pending(): Promise<number> };
  workers: WorkerRegistry;
}

const STATS_TTL_MS = 1000;

/** Asks the broker at most once a second, however many pages poll. */
export function queueMonitor(deps: MonitorDeps) {
  let cached: { at: number; stats: Promise<QueueStats | null> } | undefined;
  const brokerStats = () => {
    if (!cached || Date.now() - cached.at > STATS_TTL_MS) cached = { at: Date.now(), stats: deps.queue.stats().catch(() => null) };
    return cached.stats;
  };
  return async function overview() {
    const [stats, waitingInOutbox] = await Promise.all([brokerStats(), deps.outbox.pending()]);
    return {
      broker: { connected: stats !== null },
      queue: stats?.queue ?? null,
      ready: stats?.ready ?? null,
      // RabbitMQ's AMQP interface does not report unacked messages (only its management
      // plugin does); the live workers' heartbeats say how many jobs they hold.
      unacked: deps.workers.inFlight(),
      consumers: stats?.consumers ?? null,
      retrying: stats?.retrying ?? null,
      dead: stats?.dead ?? null,
      waitingInOutbox,
    };
  };
}

export type QueueOverview = Awaited<ReturnType<ReturnType<typeof queueMonitor>>>;
