// Live workers, as told by their heartbeats on the events exchange. Whoever can publish
// there can forge them: each is checked, each worker id is heard at a worker's pace at
// most, and a new id never pushes out a worker that is still beating.
import { MAX_WORKER_CONCURRENCY } from "../platform/config.ts";

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
  /** Told to take no new jobs (the monitor's pause); the jobs in hand still finish. */
  paused: boolean;
}

/**
 * alive: heard from lately. offline: said goodbye (a graceful stop). lost: went silent
 * without one (crashed, killed, cut off). The last two stay listed for an hour, so a
 * worker that vanished is seen to have vanished.
 */
export type WorkerStatus = "alive" | "offline" | "lost";

export interface WorkerView extends Heartbeat {
  /**
   * Jobs finished SUCCESS, and FAILURE or dead-lettered, per minute over the last minute of heartbeats, or of its
   * uptime (null until that covers 20 s).
   */
  donePerMinute: number | null;
  failedPerMinute: number | null;
  lastSeen: string;
  status: WorkerStatus;
  /** Same as status === "alive", for clients of the first API. */
  alive: boolean;
}

/** Workers tracked at most: anyone who can publish on the events exchange can invent more. */
export const MAX_TRACKED_WORKERS = 200;
/** A worker's heartbeat is ~300 bytes; larger ones are dropped unread. */
export const MAX_HEARTBEAT_BYTES = 4 * 1024;
/**
 * Heartbeats taken from one worker id: a burst of BEAT_BURST, then one per BEAT_REFILL_MS. A
 * worker beats every 2 s, and once more when it pauses, resumes or reconnects; forged ones
 * came at ~480 a second.
 */
const BEAT_BURST = 5;
const BEAT_REFILL_MS = 250;
/** How long a stopped or lost worker stays listed. */
const REMEMBER_MS = 60 * 60_000;
/** The stretch of heartbeats the per-minute rates are read over. */
const RATE_WINDOW_MS = 60_000;

type Sample = { at: number; done: number; failed: number };
type Seen = { beat: Heartbeat; at: number; said?: "goodbye"; samples: Sample[]; tokens: number };

/**
 * taken; "too often": that id has used up its heartbeats for now; "full": a new id, and every worker tracked is alive.
 */
export type BeatVerdict = "taken" | "too often" | "full";

export class WorkerRegistry {
  // In order of last heartbeat (each one moves its worker to the end), so the first is the stalest.
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly staleAfterMs = 10_000,
    private readonly maxTracked = MAX_TRACKED_WORKERS,
    private readonly clock: () => number = Date.now,
  ) {}

  heartbeat(beat: Heartbeat): BeatVerdict {
    const now = this.clock();
    const known = this.seen.get(beat.id);
    const tokens = this.admit(known, now);
    if (typeof tokens === "string") return tokens;
    // A restarted worker has a new id, so its counters only grow; the oldest sample kept is about a minute old.
    const samples = (known?.samples ?? []).filter((s) => now - s.at <= RATE_WINDOW_MS * 1.5);
    samples.push({ at: now, done: beat.done, failed: beat.failed });
    while (samples.length > 2 && now - samples[1]!.at >= RATE_WINDOW_MS) samples.shift();
    this.seen.delete(beat.id);
    this.seen.set(beat.id, { beat, at: now, samples, tokens });
    return "taken";
  }

  /** The worker's goodbye: kept, as offline, with its last numbers. */
  offline(beat: Heartbeat): BeatVerdict {
    const now = this.clock();
    const tokens = this.admit(this.seen.get(beat.id), now);
    if (typeof tokens === "string") return tokens;
    this.seen.delete(beat.id);
    this.seen.set(beat.id, { beat: { ...beat, inFlight: 0 }, at: now, said: "goodbye", samples: [], tokens });
    return "taken";
  }

  /** The heartbeats a worker has left after this one, or why this one is not taken. */
  private admit(known: Seen | undefined, now: number): number | Exclude<BeatVerdict, "taken"> {
    if (known) {
      const tokens = Math.min(BEAT_BURST, known.tokens + (now - known.at) / BEAT_REFILL_MS);
      return tokens >= 1 ? tokens - 1 : "too often";
    }
    if (this.seen.size >= this.maxTracked && !this.forgetOneGone(now)) return "full";
    return BEAT_BURST - 1;
  }

  /** Makes room by forgetting the stalest worker that is no longer alive, if there is one. */
  private forgetOneGone(now: number): boolean {
    for (const [id, { at, said }] of this.seen) {
      if (said || now - at > this.staleAfterMs) return this.seen.delete(id);
    }
    return false;
  }

  /** Alive first, then offline and lost; each by id. Ones not heard from for an hour are forgotten. */
  list(): WorkerView[] {
    const now = this.clock();
    const views: WorkerView[] = [];
    for (const [id, { beat, at, said, samples }] of this.seen) {
      if (now - at > REMEMBER_MS) {
        this.seen.delete(id);
        continue;
      }
      const status: WorkerStatus = said ? "offline" : now - at <= this.staleAfterMs ? "alive" : "lost";
      views.push({
        ...beat,
        ...ratesOf(samples, Date.parse(beat.startedAt)),
        lastSeen: new Date(at).toISOString(),
        status,
        alive: status === "alive",
      });
    }
    const rank = { alive: 0, offline: 1, lost: 2 };
    return views.sort((a, b) => rank[a.status] - rank[b.status] || a.id.localeCompare(b.id));
  }

  /** Jobs the live workers hold right now (delivered but not yet acked). */
  inFlight(): number {
    return this.list()
      .filter((w) => w.alive)
      .reduce((sum, w) => sum + w.inFlight, 0);
  }
}

/** The shortest stretch a rate is read over: one job in a worker's first two seconds is not "30 a minute". */
const RATE_MIN_SPAN_MS = 20_000;

/**
 * Per minute, from the first and last of the samples. A worker that started inside the
 * window, before the first sample this web heard, counted from zero at its start, so the
 * stretch runs from there: over its real uptime. Null until the stretch is long enough.
 */
function ratesOf(
  samples: Sample[],
  startedAt: number,
): { donePerMinute: number | null; failedPerMinute: number | null } {
  const last = samples[samples.length - 1];
  if (!last) return { donePerMinute: null, failedPerMinute: null };
  const fromStart = startedAt < samples[0]!.at && last.at - startedAt <= RATE_WINDOW_MS;
  const first = fromStart ? { at: startedAt, done: 0, failed: 0 } : samples[0]!;
  if (last.at - first.at < RATE_MIN_SPAN_MS) return { donePerMinute: null, failedPerMinute: null };
  const minutes = (last.at - first.at) / 60_000;
  const rate = (from: number, to: number) => Math.round((Math.max(0, to - from) / minutes) * 10) / 10;
  return { donePerMinute: rate(first.done, last.done), failedPerMinute: rate(first.failed, last.failed) };
}

/**
 * A heartbeat as received, checked field by field: types, lengths and sane ranges. Anything
 * else is dropped, so a forged message can neither grow the pages nor turn a count into text.
 */
export function parseHeartbeat(value: unknown): Heartbeat | undefined {
  const beat = value as Record<string, unknown> | null;
  if (typeof beat !== "object" || beat === null) return undefined;
  const { id, host, pid, concurrency, done, failed, skipped, inFlight, startedAt, ready, paused = false } = beat;
  const label = (v: unknown, max: number) =>
    typeof v === "string" && v.length >= 1 && v.length <= max && /^[\w.:@-]+$/.test(v);
  const count = (v: unknown, max = Number.MAX_SAFE_INTEGER) =>
    Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
  const ok =
    label(id, 100) &&
    label(host, 255) &&
    count(pid, 2 ** 32) &&
    count(concurrency, MAX_WORKER_CONCURRENCY) &&
    (concurrency as number) >= 1 &&
    count(done) &&
    count(failed) &&
    count(skipped) &&
    // A worker holds at most its prefetch, which is its concurrency.
    count(inFlight, concurrency as number) &&
    typeof startedAt === "string" &&
    startedAt.length <= 30 &&
    !Number.isNaN(Date.parse(startedAt)) &&
    typeof ready === "boolean" &&
    typeof paused === "boolean";
  if (!ok) return undefined;
  return { id, host, pid, concurrency, done, failed, skipped, inFlight, startedAt, ready, paused } as Heartbeat;
}
