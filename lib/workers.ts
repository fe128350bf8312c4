// Live workers, as told by their heartbeats on the events exchange.
/** What a worker says about itself every couple of seconds. */
export interface Heartbeat {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  done: number;
  failed: number;
  skipped: number;
  inFlight: number;
  startedAt: string;
  ready: boolean;
}

export interface WorkerView extends Heartbeat {
  lastSeen: string;
  alive: boolean;
}

export class WorkerRegistry {
  private readonly seen = new Map<string, { beat: Heartbeat; at: number }>();

  constructor(private readonly staleAfterMs = 10_000) {}

  heartbeat(beat: Heartbeat): void {
    this.seen.set(beat.id, { beat, at: Date.now() });
  }

  offline(id: string): void {
    this.seen.delete(id);
  }

  /** Workers heard from recently; ones silent for an hour are forgotten. */
  list(): WorkerView[] {
    const now = Date.now();
    const views: WorkerView[] = [];
    for (const [id, { beat, at }] of this.seen) {
      if (now - at > 60 * 60_000) this.seen.delete(id);
      else views.push({ ...beat, lastSeen: new Date(at).toISOString(), alive: now - at <= this.staleAfterMs });
    }
    return views.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Jobs the live workers hold right now (delivered but not yet acked). */
  inFlight(): number {
    return this.list().filter((w) => w.alive).reduce((sum, w) => sum + w.inFlight, 0);
  }
}

export function isHeartbeat(value: unknown): value is Heartbeat {
  const beat = value as Partial<Heartbeat> | null;
  return typeof beat?.id === "string" && typeof beat.pid === "number" && typeof beat.host === "string";
}
