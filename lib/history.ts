// The monitor's history over a window (the last 15 minutes, hour or day): tasks submitted,
// succeeded and failed and attempts retried, per time bucket; and how long jobs waited in
// the queue and ran, as p50/p95. Counted by the database in a few GROUP BYs over indexed
// times (Task.createdAt, Task.finishedAt, Attempt.finishedAt), never by reading rows out:
// durations are grouped into quarter-octave buckets (each ~19% wide) and the percentiles
// read from them, as Prometheus' histogram_quantile does. SQL in both dialects, side by side.
import { cachedFor } from "./cachedFor.ts";
import type { Db } from "./db.ts";

export const WINDOWS = {
  "15m": { ms: 15 * 60_000, bucketMs: 60_000, label: "15 min" },
  "1h": { ms: 60 * 60_000, bucketMs: 2 * 60_000, label: "1 hour" },
  "1d": { ms: 24 * 60 * 60_000, bucketMs: 30 * 60_000, label: "1 day" },
} as const;
export type WindowName = keyof typeof WINDOWS;
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
  /** From the broker's confirm to a worker's start, for tasks submitted in the window. */
  queueWait: Percentiles;
  /** Attempts that finished in the window, from start to finish. */
  runtime: Percentiles;
}

export interface Percentiles {
  count: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

/** Durations are grouped by round(log2(ms) * STEPS): STEPS buckets per doubling. */
const STEPS = 4;

const SQLITE = {
  // dialect: julianday() differences in days; PostgreSQL subtracts timestamps.
  counts: `
    SELECT 'submitted' AS series, CAST((julianday(createdAt) - julianday(?)) * 86400000 / ? AS INTEGER) AS bucket, count(*) AS n FROM Task WHERE createdAt >= ? GROUP BY 2
    UNION ALL SELECT CASE state WHEN 'SUCCESS' THEN 'succeeded' ELSE 'failed' END, CAST((julianday(finishedAt) - julianday(?)) * 86400000 / ? AS INTEGER), count(*)
      FROM Task WHERE finishedAt >= ? AND state IN ('SUCCESS', 'FAILURE') GROUP BY 1, 2
    UNION ALL SELECT 'retried', CAST((julianday(finishedAt) - julianday(?)) * 86400000 / ? AS INTEGER), count(*) FROM Attempt WHERE finishedAt >= ? AND outcome = 'RETRY' GROUP BY 2`,
  durations: `
    SELECT 'wait' AS series, CAST(round(log2(max(1, (julianday(startedAt) - julianday(queuedAt)) * 86400000)) * ${STEPS}) AS INTEGER) AS bucket, count(*) AS n
      FROM Task WHERE createdAt >= ? AND startedAt IS NOT NULL AND queuedAt IS NOT NULL GROUP BY 2
    UNION ALL SELECT 'runtime', CAST(round(log2(max(1, (julianday(finishedAt) - julianday(startedAt)) * 86400000)) * ${STEPS}) AS INTEGER), count(*)
      FROM Attempt WHERE finishedAt >= ? GROUP BY 2`,
  params: (from: string, bucketMs: number) => ({ counts: [from, bucketMs, from, from, bucketMs, from, from, bucketMs, from], durations: [from, from] }),
};

const ms = (a: string, b: string) => `extract(epoch from (${a} - ${b})) * 1000`;
const POSTGRES = {
  counts: `
    SELECT 'submitted' AS series, floor(${ms(`"createdAt"`, "$1::timestamp")} / $2)::int AS bucket, count(*)::int AS n FROM "Task" WHERE "createdAt" >= $1::timestamp GROUP BY 2
    UNION ALL SELECT CASE state WHEN 'SUCCESS' THEN 'succeeded' ELSE 'failed' END, floor(${ms(`"finishedAt"`, "$1::timestamp")} / $2)::int, count(*)::int
      FROM "Task" WHERE "finishedAt" >= $1::timestamp AND state IN ('SUCCESS', 'FAILURE') GROUP BY 1, 2
    UNION ALL SELECT 'retried', floor(${ms(`"finishedAt"`, "$1::timestamp")} / $2)::int, count(*)::int FROM "Attempt" WHERE "finishedAt" >= $1::timestamp AND outcome = 'RETRY' GROUP BY 2`,
  durations: `
    SELECT 'wait' AS series, round(log(2, greatest(1, ${ms(`"startedAt"`, `"queuedAt"`)})::numeric) * ${STEPS})::int AS bucket, count(*)::int AS n
      FROM "Task" WHERE "createdAt" >= $1::timestamp AND "startedAt" IS NOT NULL AND "queuedAt" IS NOT NULL GROUP BY 2
    UNION ALL SELECT 'runtime', round(log(2, greatest(1, ${ms(`"finishedAt"`, `"startedAt"`)})::numeric) * ${STEPS})::int, count(*)::int
      FROM "Attempt" WHERE "finishedAt" >= $1::timestamp GROUP BY 2`,
  // Prisma stores UTC in a timestamp without a zone.
  params: (from: string, bucketMs: number) => ({ counts: [from.replace("T", " ").replace("+00:00", ""), bucketMs], durations: [from.replace("T", " ").replace("+00:00", "")] }),
};

type Row = { series: string; bucket: number | bigint; n: number | bigint };

export function windowFrom(value: unknown): WindowName {
  return typeof value === "string" && value in WINDOWS ? (value as WindowName) : "1h";
}

export async function taskHistory(db: Db, postgres: boolean, window: WindowName, now = Date.now()): Promise<History> {
  const { ms: span, bucketMs } = WINDOWS[window];
  // Buckets line up with the clock, so a chart does not shift on every refresh.
  const fromMs = Math.floor((now - span) / bucketMs) * bucketMs + bucketMs;
  const from = new Date(fromMs).toISOString().replace("Z", "+00:00");
  const sql = postgres ? POSTGRES : SQLITE;
  const params = sql.params(from, bucketMs);
  const [counts, durations] = await Promise.all([db.$queryRawUnsafe<Row[]>(sql.counts, ...params.counts), db.$queryRawUnsafe<Row[]>(sql.durations, ...params.durations)]);

  const size = Math.ceil((now - fromMs) / bucketMs);
  const buckets: Bucket[] = Array.from({ length: size }, (_, i) => ({ at: new Date(fromMs + i * bucketMs).toISOString(), submitted: 0, succeeded: 0, failed: 0, retried: 0 }));
  const totals = { submitted: 0, succeeded: 0, failed: 0, retried: 0 };
  for (const row of counts) {
    const series = row.series as Series;
    const bucket = buckets[Math.min(size - 1, Math.max(0, Number(row.bucket)))];
    if (!bucket || !(series in totals)) continue;
    bucket[series] += Number(row.n);
    totals[series] += Number(row.n);
  }
  return {
    window,
    bucketMs,
    from: new Date(fromMs).toISOString(),
    buckets,
    totals,
    queueWait: percentiles(durations.filter((r) => r.series === "wait")),
    runtime: percentiles(durations.filter((r) => r.series === "runtime")),
  };
}

/** p50 and p95 from log buckets: the middle of the bucket the rank falls in. */
function percentiles(rows: Row[]): Percentiles {
  const sorted = rows.map((r) => ({ bucket: Number(r.bucket), n: Number(r.n) })).sort((a, b) => a.bucket - b.bucket);
  const count = sorted.reduce((sum, r) => sum + r.n, 0);
  const at = (q: number) => {
    if (count === 0) return null;
    let seen = 0;
    for (const r of sorted) {
      seen += r.n;
      if (seen >= q * count) return Math.round(2 ** (r.bucket / STEPS));
    }
    return null;
  };
  return { count, p50Ms: at(0.5), p95Ms: at(0.95) };
}

/** At most one history per window every 5 s, however many live pages refresh. */
export function cachedHistory(db: Db, postgres: boolean): (window: WindowName) => Promise<History> {
  return cachedFor(5000, (window: WindowName) => taskHistory(db, postgres, window));
}
