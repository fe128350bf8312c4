// The monitor's history over a window (the last 15 minutes, hour or day): tasks submitted,
// succeeded and failed and attempts retried, per time bucket; and how long jobs waited in
// the queue and ran, as p50/p95. The database counts them (lib/store/queries/history.ts),
// durations grouped into quarter-octave steps, and the percentiles are read from the steps,
// as Prometheus' histogram_quantile does. Every number is filed under the time its event
// happened (created, started, finished), so a bucket that ended a minute ago no longer
// changes: the cached history (cachedHistory) keeps those and asks the database only for
// the newest buckets.
import { cachedFor } from "../platform/cachedFor.ts";
import { STEPS, type HistoryQueries } from "../store/queries/index.ts";

export const WINDOWS = {
  "15m": { ms: 15 * 60_000, bucketMs: 60_000, label: "15 min" },
  "1h": { ms: 60 * 60_000, bucketMs: 2 * 60_000, label: "1 hour" },
  "1d": { ms: 24 * 60 * 60_000, bucketMs: 30 * 60_000, label: "1 day" },
} as const;
export type WindowName = keyof typeof WINDOWS;
export const WINDOW_LABELS = Object.fromEntries(Object.entries(WINDOWS).map(([name, w]) => [name, w.label])) as Record<
  WindowName,
  string
>;
export const SERIES = ["submitted", "succeeded", "failed", "retried"] as const;
export type Series = (typeof SERIES)[number];

export interface Bucket extends Record<Series, number> {
  at: string;
}

export interface History {
  window: WindowName;
  bucketMs: number;
  from: string;
  buckets: Bucket[];
  totals: Record<Series, number>;
  /** From the broker's confirm to a worker's start, for tasks that started in the window. */
  queueWait: Percentiles;
  /** Attempts that finished in the window, from start to finish. */
  runtime: Percentiles;
}

export interface Percentiles {
  count: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

/** What one bucket holds: its counts, and its durations by step. */
interface BucketData {
  counts: Record<Series, number>;
  wait: Map<number, number>;
  runtime: Map<number, number>;
}

/** The final buckets a cached history keeps for one window, by bucket number: they no longer change. */
export type HistoryMemory = Map<number, BucketData>;

/** A bucket that ended this long ago is final: every event in it has been written. */
const FINAL_AFTER_MS = 60_000;

export function windowFrom(value: unknown): WindowName {
  // Own keys only: `in` also finds __proto__, constructor, toString… on every object.
  return typeof value === "string" && Object.hasOwn(WINDOWS, value) ? (value as WindowName) : "1h";
}

const emptyBucket = (): BucketData => ({
  counts: { submitted: 0, succeeded: 0, failed: 0, retried: 0 },
  wait: new Map(),
  runtime: new Map(),
});

/**
 * The history of the window ending now. With `memory`, buckets that are final are kept in
 * it and not asked for again: only the buckets from the first one missing are counted.
 */
export async function taskHistory(
  history: HistoryQueries,
  window: WindowName,
  now = Date.now(),
  memory?: HistoryMemory,
): Promise<History> {
  const { ms: span, bucketMs } = WINDOWS[window];
  // Buckets line up with the clock, so a chart does not shift on every refresh.
  const first = Math.floor((now - span) / bucketMs) + 1;
  const last = Math.floor(now / bucketMs);
  const lastFinal = Math.floor((now - FINAL_AFTER_MS) / bucketMs) - 1;
  for (const kept of memory?.keys() ?? []) if (kept < first) memory!.delete(kept);
  let askFrom = first;
  while (askFrom <= lastFinal && memory?.has(askFrom)) askFrom += 1;

  const fresh = new Map<number, BucketData>();
  for (const row of await history.counts(new Date(askFrom * bucketMs), bucketMs)) {
    const index = Math.min(last, row.bucket);
    if (index < askFrom) continue;
    const data = fresh.get(index) ?? emptyBucket();
    fresh.set(index, data);
    const n = row.n;
    if (row.series === "wait" || row.series === "runtime") {
      const steps = data[row.series];
      steps.set(row.step, (steps.get(row.step) ?? 0) + n);
    } else if (row.series in data.counts) {
      data.counts[row.series as Series] += n;
    }
  }
  for (let index = askFrom; index <= lastFinal; index++) memory?.set(index, fresh.get(index) ?? emptyBucket());

  const buckets: Bucket[] = [];
  const totals = { submitted: 0, succeeded: 0, failed: 0, retried: 0 };
  const wait = new Map<number, number>();
  const runtime = new Map<number, number>();
  for (let index = first; index <= last; index++) {
    const data = (index < askFrom ? memory?.get(index) : fresh.get(index)) ?? emptyBucket();
    buckets.push({ at: new Date(index * bucketMs).toISOString(), ...data.counts });
    for (const series of SERIES) totals[series] += data.counts[series];
    for (const [step, n] of data.wait) wait.set(step, (wait.get(step) ?? 0) + n);
    for (const [step, n] of data.runtime) runtime.set(step, (runtime.get(step) ?? 0) + n);
  }
  return {
    window,
    bucketMs,
    from: new Date(first * bucketMs).toISOString(),
    buckets,
    totals,
    queueWait: percentiles(wait),
    runtime: percentiles(runtime),
  };
}

/** At most one history per window every 5 s, however many live pages refresh; final buckets are counted once. */
export function cachedHistory(history: HistoryQueries): (window: WindowName) => Promise<History> {
  const memories = new Map<WindowName, HistoryMemory>();
  return cachedFor(5000, (window: WindowName) => {
    const memory = memories.get(window) ?? new Map();
    memories.set(window, memory);
    return taskHistory(history, window, Date.now(), memory);
  });
}

/** p50 and p95 from the steps: the middle of the step the rank falls in. */
function percentiles(steps: Map<number, number>): Percentiles {
  const sorted = [...steps].sort((a, b) => a[0] - b[0]);
  const count = sorted.reduce((sum, [, n]) => sum + n, 0);
  const at = (q: number) => {
    if (count === 0) return null;
    let seen = 0;
    for (const [step, n] of sorted) {
      seen += n;
      if (seen >= q * count) return Math.round(2 ** (step / STEPS));
    }
    return null;
  };
  return { count, p50Ms: at(0.5), p95Ms: at(0.95) };
}
