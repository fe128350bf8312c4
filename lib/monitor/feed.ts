// The monitor's queue and workers panels have no events of their own: their numbers live in
// the broker and in worker heartbeats. Rather than every open /tasks page fetching itself
// every few seconds, the web looks every few seconds, and tells the pages (a "monitor" event)
// only when something they show has changed.
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
  // What the panels showed at the last look: the workers' part is followed at every look,
  // watched or not (it is in memory), so a page drawn between two looks is told of a worker
  // that paused just after it read them; the queue's part only while a page watches, since it
  // costs a broker round trip. A part's first reading is a starting point, not news.
  let shownWorkers: string | undefined;
  let shownQueue: string | undefined;
  let overview: QueueOverview | null = null;
  let looking = false;

  /** The queue's numbers; a broker read that hangs must not hold the looks up, so after waitMs the last ones. */
  const readQueue = async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, waitMs, TIMED_OUT)));
    const answer = await Promise.race([monitor().catch(() => null), timeout]).finally(() => clearTimeout(timer));
    if (answer !== TIMED_OUT) overview = answer;
    return JSON.stringify(overview);
  };

  const look = async () => {
    if (looking) return;
    looking = true;
    try {
      const watched = hub.watched;
      const queue = watched ? await readQueue() : shownQueue;
      // What the workers panel shows, without the heartbeat times the page counts itself.
      const list = workers.list();
      const availability = workerAvailability(list);
      const shown = list.map((w) => [
        w.id,
        w.status,
        w.ready,
        w.paused,
        w.concurrency,
        w.inFlight,
        w.done,
        w.failed,
        w.skipped,
      ]);
      const workersNow = JSON.stringify([availability, shown]);
      const changed =
        (shownWorkers !== undefined && workersNow !== shownWorkers) ||
        (shownQueue !== undefined && queue !== shownQueue);
      if (watched && changed) hub.publish({ type: "monitor", workers: availability });
      shownWorkers = workersNow;
      shownQueue = queue;
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
