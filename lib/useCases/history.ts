// The monitor's history over a window (the last 15 minutes, hour or day): tasks submitted,
// succeeded and failed and attempts retried, per time bucket; and how long jobs waited in
// the queue and ran, as p50/p95. Counted by the database in one query of GROUP BYs over
// indexed times, never by reading rows out: durations are grouped into quarter-octave
// steps (each ~19% wide) and the percentiles read from them, as Prometheus'
// histogram_quantile does. Every number is filed under the time its event happened
// (created, started, finished), so a bucket that ended a minute ago no longer changes:
// the cached history (cachedHistory) keeps those and asks the database only for the
// newest buckets. SQL in both dialects, side by side.
import { cachedFor } from "../platform/cachedFor.ts";
import type { Db } from "../store/db.ts";

export const WINDOWS = {
  "15m": { ms: 15 * 60_000, bucketMs: 60_000, label: "15 min" },
  "1h": { ms: 60 * 60_000, bucketMs: 2 * 60_000, label: "1 hour" },
  "1d": { ms: 24 * 60 * 60_000, bucketMs: 30 * 60_000, label: "1 day" },
} as const;
export type WindowName = keyof typeof WINDOWS;
export const WINDOW_LABELS = Object.fromEntries(Object.entries(WINDOWS).map(([name, w]) => [name, w.label])) as Record<WindowName, string>;
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

/** Buckets of these many kept, per window, by a cached history. */
export type HistoryMemory = Map<number, BucketData>;

/** Durations are grouped by round(log2(ms) * STEPS): STEPS steps per doubling. */
const STEPS = 4;
/** A bucket that ended this long ago is final: every event in it has been written. */
const FINAL_AFTER_MS = 60_000;

// Each row: a series, the bucket (epoch milliseconds / bucket size), a duration step (0 for counts) and a count.
const SQLITE = (() => {
  // dialect: julianday() is in days; 2440587.5 is 1970-01-01. PostgreSQL extracts the epoch.
  const bucket = (column: string) => `CAST((julianday(${column}) - 2440587.5) * 86400000 / ? AS INTEGER)`;
  const step = (to: string, from: string) => `CAST(round(log2(max(1, (julianday(${to}) - julianday(${from})) * 86400000)) * ${STEPS}) AS INTEGER)`;
  return {
    text: `
      SELECT 'submitted' AS series, ${bucket("createdAt")} AS bucket, 0 AS step, count(*) AS n FROM Task WHERE createdAt >= ? GROUP BY 2
      UNION ALL SELECT CASE state WHEN 'SUCCESS' THEN 'succeeded' ELSE 'failed' END, ${bucket("finishedAt")}, 0, count(*)
        FROM Task WHERE finishedAt >= ? AND state IN ('SUCCESS', 'FAILURE') GROUP BY 1, 2
      UNION ALL SELECT 'retried', ${bucket("finishedAt")}, 0, count(*) FROM Attempt WHERE finishedAt >= ? AND outcome = 'RETRY' GROUP BY 2
      UNION ALL SELECT 'wait', ${bucket("startedAt")}, ${step("startedAt", "queuedAt")}, count(*) FROM Task WHERE startedAt >= ? AND queuedAt IS NOT NULL GROUP BY 2, 3
      UNION ALL SELECT 'runtime', ${bucket("finishedAt")}, ${step("finishedAt", "startedAt")}, count(*) FROM Attempt WHERE finishedAt >= ? GROUP BY 2, 3`,
    params: (from: string, bucketMs: number) => Array.from({ length: 5 }, () => [bucketMs, from]).flat(),
  };
})();

const POSTGRES = (() => {
  // A timestamp without a zone holding UTC: its epoch is UTC's.
  const bucket = (column: string) => `floor(extract(epoch from "${column}") * 1000 / $2)::bigint`;
  const step = (to: string, from: string) => `round(log(2, greatest(1, extract(epoch from ("${to}" - "${from}")) * 1000)::numeric) * ${STEPS})::int`;
  return {
    text: `
      SELECT 'submitted' AS series, ${bucket("createdAt")} AS bucket, 0 AS step, count(*)::int AS n FROM "Task" WHERE "createdAt" >= $1::timestamp GROUP BY 2
      UNION ALL SELECT CASE state WHEN 'SUCCESS' THEN 'succeeded' ELSE 'failed' END, ${bucket("finishedAt")}, 0, count(*)::int
        FROM "Task" WHERE "finishedAt" >= $1::timestamp AND state IN ('SUCCESS', 'FAILURE') GROUP BY 1, 2
      UNION ALL SELECT 'retried', ${bucket("finishedAt")}, 0, count(*)::int FROM "Attempt" WHERE "finishedAt" >= $1::timestamp AND outcome = 'RETRY' GROUP BY 2
      UNION ALL SELECT 'wait', ${bucket("startedAt")}, ${step("startedAt", "queuedAt")}, count(*)::int
        FROM "Task" WHERE "startedAt" >= $1::timestamp AND "queuedAt" IS NOT NULL GROUP BY 2, 3
      UNION ALL SELECT 'runtime', ${bucket("finishedAt")}, ${step("finishedAt", "startedAt")}, count(*)::int FROM "Attempt" WHERE "finishedAt" >= $1::timestamp GROUP BY 2, 3`,
    params: (from: string, bucketMs: number) => [from.replace("T", " ").replace("+00:00", ""), bucketMs],
  };
})();

type Row = { series: string; bucket: number | bigint; step: number | bigint; n: number | bigint };

export function windowFrom(value: unknown): WindowName {
  // Own keys only: `in` also finds __proto__, constructor, toString… on every object.
  return typeof value === "string" && Object.hasOwn(WINDOWS, value) ? (value as WindowName) : "1h";
}

const emptyBucket = (): BucketData => ({ counts: { submitted: 0, succeeded: 0, failed: 0, retried: 0 }, wait: new Map(), runtime: new Map() });

/**
 * The history of the window ending now. With `memory`, buckets that are final are kept in
 * it and not asked for again: only the buckets from the first one missing are counted.
 */
export async function taskHistory(db: Db, postgres: boolean, window: WindowName, now = Date.now(), memory?: HistoryMemory): Promise<History> {
  const { ms: span, bucketMs } = WINDOWS[window];
  // Buckets line up with the clock, so a chart does not shift on every refresh.
  const first = Math.floor((now - span) / bucketMs) + 1;
  const last = Math.floor(now / bucketMs);
  const lastFinal = Math.floor((now - FINAL_AFTER_MS) / bucketMs) - 1;
  for (const kept of memory?.keys() ?? []) if (kept < first) memory!.delete(kept);
  let askFrom = first;
  while (askFrom <= lastFinal && memory?.has(askFrom)) askFrom += 1;

  const fresh = new Map<number, BucketData>();
  const sql = postgres ? POSTGRES : SQLITE;
  const from = new Date(askFrom * bucketMs).toISOString().replace("Z", "+00:00");
  for (const row of await db.$queryRawUnsafe<Row[]>(sql.text, ...sql.params(from, bucketMs))) {
    const index = Math.min(last, Number(row.bucket));
    if (index < askFrom) continue;
    const data = fresh.get(index) ?? emptyBucket();
    fresh.set(index, data);
    const n = Number(row.n);
    if (row.series === "wait" || row.series === "runtime") {
      const steps = data[row.series];
      steps.set(Number(row.step), (steps.get(Number(row.step)) ?? 0) + n);
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
  return { window, bucketMs, from: new Date(first * bucketMs).toISOString(), buckets, totals, queueWait: percentiles(wait), runtime: percentiles(runtime) };
}

/** At most one history per window every 5 s, however many live pages refresh; final buckets are counted once. */
export function cachedHistory(db: Db, postgres: boolean): (window: WindowName) => Promise<History> {
  const memories = new Map<WindowName, HistoryMemory>();
  return cachedFor(5000, (window: WindowName) => {
    const memory = memories.get(window) ?? new Map();
    memories.set(window, memory);
    return taskHistory(db, postgres, window, Date.now(), memory);
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
