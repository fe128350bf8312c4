// The monitor's queue and workers panels have no events of their own: their numbers live in
// the broker and in worker heartbeats. Rather than every open /tasks page fetching itself
// every few seconds, the web looks every few seconds while anyone watches, and tells the
// pages (a "monitor" event) when what the panels show is not what it last told them.
//
// Each event carries a digest of the panels, and /tasks is drawn with the digest of what it
// shows (panelsDigest): a page skips an event about what it already shows. So a look may tell
// the pages whenever it is unsure (its first look, after a quiet spell) without one fetching
// itself for nothing, and a page drawn just before a worker paused is told at the next look.
import { createHash } from "node:crypto";
import type { EventHub } from "../live/eventHub.ts";
import type { QueueOverview } from "./overview.ts";
import { workerAvailability } from "./workerAvailability.ts";
import type { WorkerRegistry, WorkerView } from "./workerRegistry.ts";

export interface MonitorFeedDeps {
  hub: EventHub;
  monitor: () => Promise<QueueOverview>;
  workers: WorkerRegistry;
  intervalMs?: number;
  /** How long a look waits for the queue's numbers before it goes on with the last ones. */
  waitMs?: number;
}

/** What the queue and workers panels show, without the heartbeat times the page counts itself, as a short digest. */
export function panelsDigest(overview: QueueOverview | null, workers: WorkerView[]): string {
  const shown = workers.map((w) => [
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
  const text = JSON.stringify([overview, workerAvailability(workers), shown]);
  return createHash("sha256").update(text).digest("base64url").slice(0, 16);
}

const TIMED_OUT = Symbol("timed out");

export function startMonitorFeed({ hub, monitor, workers, intervalMs = 3000, waitMs = 2000 }: MonitorFeedDeps) {
  let told: string | undefined;
  let overview: QueueOverview | null = null;
  let looking = false;

  /** The queue's numbers; a broker read that hangs must not hold the looks up, so after waitMs the last ones. */
  const readQueue = async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, waitMs, TIMED_OUT)));
    const answer = await Promise.race([monitor().catch(() => null), timeout]).finally(() => clearTimeout(timer));
    if (answer !== TIMED_OUT) overview = answer;
  };

  const look = async () => {
    if (looking || !hub.watched) return;
    looking = true;
    try {
      await readQueue();
      const list = workers.list();
      const panels = panelsDigest(overview, list);
      if (panels !== told) hub.publish({ type: "monitor", workers: workerAvailability(list), panels });
      told = panels;
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
