// The monitor's queue and workers panels have no events of their own: their numbers live in
// the broker and in worker heartbeats. Rather than every open /tasks page fetching itself
// every few seconds, the web looks every few seconds while anyone watches, and tells the
// pages (a "monitor" event) only when something they show has changed.
import type { EventHub } from "../live/eventHub.ts";
import type { QueueOverview } from "./overview.ts";
import { workerAvailability } from "./workerAvailability.ts";
import type { WorkerRegistry } from "./workerRegistry.ts";

export interface MonitorFeedDeps {
  hub: EventHub;
  monitor: () => Promise<QueueOverview>;
  workers: WorkerRegistry;
  intervalMs?: number;
  /** How long a look waits for the queue's numbers before it goes on with the last ones. */
  waitMs?: number;
}

const TIMED_OUT = Symbol("timed out");

export function startMonitorFeed({ hub, monitor, workers, intervalMs = 3000, waitMs = 2000 }: MonitorFeedDeps) {
  let shown: string | undefined;
  let looking = false;
  let lastOverview: QueueOverview | null = null;
  const look = async () => {
    if (looking || !hub.watched) return;
    looking = true;
    try {
      // The workers' numbers are in memory; the queue's come from the broker, which may not
      // answer. A broker read that hangs must not keep a paused worker off the pages: the
      // look goes on with the last queue numbers, and the next one asks again.
      let timer: NodeJS.Timeout | undefined;
      const answer = await Promise.race([
        monitor().catch(() => null),
        new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, waitMs, TIMED_OUT))),
      ]).finally(() => clearTimeout(timer));
      const overview = answer === TIMED_OUT ? lastOverview : answer;
      lastOverview = overview;
      // What the panels show, without the heartbeat times the page counts itself.
      const list = workers.list();
      const availability = workerAvailability(list);
      const digest = JSON.stringify([
        overview,
        availability,
        list.map((w) => [w.id, w.status, w.ready, w.paused, w.concurrency, w.inFlight, w.done, w.failed, w.skipped]),
      ]);
      // The first look tells the pages too: a page drawn before it (a worker paused just after
      // the page read the registry) has no earlier look to compare with and would wait for ever.
      if (digest !== shown) hub.publish({ type: "monitor", workers: availability });
      shown = digest;
    } finally {
      looking = false;
    }
  };
  const timer = setInterval(() => void look(), intervalMs);
  timer.unref();
  return {
    stop(): void {
      clearInterval(timer);
    },
  };
}
