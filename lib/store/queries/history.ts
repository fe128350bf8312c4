// The monitor's history counted by the database (lib/useCases/history.ts turns the rows into
// buckets and percentiles): one query of GROUP BYs over indexed times, never reading rows
// out. Durations are grouped into quarter-octave steps (each ~19% wide), as Prometheus'
// histograms are. SQL in both dialects, side by side.
import { isOnPostgres, type Db } from "../db.ts";

/**
 * A count of one series in one time bucket (epoch ms / bucket size), and for the durations ("wait", "runtime") one
 * step.
 */
/** Durations are grouped by round(log2(ms) * STEPS): STEPS steps per doubling. */
export const STEPS = 4;

export interface HistoryRow {
  series: "submitted" | "succeeded" | "failed" | "retried" | "wait" | "runtime";
  bucket: number;
  /** The duration's step; 0 for the counts. */
  step: number;
  n: number;
}

export interface HistoryQueries {
  /** Every series counted from `from` on, in buckets of bucketMs. */
  counts(from: Date, bucketMs: number): Promise<HistoryRow[]>;
}

const SQLITE = (() => {
  // dialect: julianday() is in days; 2440587.5 is 1970-01-01. PostgreSQL extracts the epoch.
  const bucket = (column: string) => `CAST((julianday(${column}) - 2440587.5) * 86400000 / ? AS INTEGER)`;
  const step = (to: string, from: string) =>
    `CAST(round(log2(max(1, (julianday(${to}) - julianday(${from})) * 86400000)) * ${STEPS}) AS INTEGER)`;
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
  const step = (to: string, from: string) =>
    `round(log(2, greatest(1, extract(epoch from ("${to}" - "${from}")) * 1000)::numeric) * ${STEPS})::int`;
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

type Row = { series: HistoryRow["series"]; bucket: number | bigint; step: number | bigint; n: number | bigint };

export function historyQueries(db: Db): HistoryQueries {
  const sql = isOnPostgres(db) ? POSTGRES : SQLITE;
  return {
    async counts(from, bucketMs) {
      const rows = await db.$queryRawUnsafe<Row[]>(
        sql.text,
        ...sql.params(from.toISOString().replace("Z", "+00:00"), bucketMs),
      );
      return rows.map((row) => ({
        series: row.series,
        bucket: Number(row.bucket),
        step: Number(row.step),
        n: Number(row.n),
      }));
    },
  };
}
