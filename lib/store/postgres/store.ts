// The job pipeline's writes on PostgreSQL, through node-postgres: the same transactions as the SQLite store, in
// PostgreSQL's dialect. finishRun, stop, rerun and recover are the shared flows of ../flows.ts on this dialect's steps
// (./steps.ts). The busy ones (accept, claim, succeed, markSent) go in groups, several calls per statement
// (lib/store/postgres/groups.ts). Row locks replace SQLite's single writer: relays and sweeps take rows with FOR UPDATE
// SKIP LOCKED, so several processes on several machines never take the same one, and guarded UPDATEs re-check their
// WHERE after waiting for a lock, so two runs racing for one task cannot both win. Every time written or compared is
// the database's clock (NOW), never a process's: leases and heartbeats stay right when the hosts' clocks disagree.
import pg from "pg";
import type { Photo, Task } from "../../../generated/prisma/client.ts";
import { TaskState } from "../../../generated/prisma/enums.ts";
import { FINISHED_STATES } from "../../lifecycle/transitions.ts";
import * as flows from "../flows.ts";
import { runAwaiting } from "../flows.ts";
import type { NewTask, OpenRun, OutboxJob, TaskStore, WorkerSign } from "../index.ts";
import { groupedWrites } from "./groups.ts";
import { postgresSteps } from "./steps.ts";
import { guard, NOW, nowPlus, type Query, type Row } from "./query.ts";

const { FAILURE, REVOKED } = TaskState;

// Prisma's DateTime is timestamp(3) without a zone, holding UTC: read it as UTC.
const TIMESTAMP_OID = 1114;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === TIMESTAMP_OID
      ? (text: string) => new Date(`${text.replace(" ", "T")}Z`)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

const iso = (date: Date) => date.toISOString();

/**
 * timeoutMs bounds each connect (a free client from the pool included) and each query: a
 * database that went silent fails the step (the connection is then dropped) instead of
 * holding a submit or a job until TCP gives up.
 */
export function openPostgresStore(connectionString: string, timeoutMs?: number): TaskStore {
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    types,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  pool.on("error", () => {}); // an idle client's error: the next query gets a fresh one
  return postgresStore(pool);
}

export function postgresStore(pool: pg.Pool): TaskStore {
  const query: Query = async (statement, values = []) =>
    (await pool.query(typeof statement === "string" ? { text: statement, values } : { ...statement, values }))
      .rows as Row[];
  /**
   * One transaction on one connection; rolled back if fn throws. A checked-out client has
   * no error listener of the pool's: a connection reset between two of its queries would
   * be an unhandled 'error' event and end the process, so one is attached while it is out.
   * A client that broke, or whose ROLLBACK failed, is destroyed instead of going back; so
   * is one whose query failed other than by PostgreSQL's answer (a timeout: the connection
   * may still be busy with it), without a ROLLBACK that would wait behind it.
   */
  async function transaction<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => (broken ??= err);
    client.on("error", onError);
    try {
      await client.query("BEGIN");
      const result = await fn(
        async (statement, values = []) =>
          (await client.query(typeof statement === "string" ? { text: statement, values } : { ...statement, values }))
            .rows as Row[],
      );
      await client.query("COMMIT");
      return result;
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) broken ??= err as Error;
      if (!broken) await client.query("ROLLBACK").catch((rollbackErr: Error) => (broken = rollbackErr));
      throw err;
    } finally {
      client.off("error", onError);
      client.release(broken ?? false);
    }
  }
  const task = (row: Row | undefined) => row as unknown as Task | undefined;
  const { accept, claim, succeed, markSent } = groupedWrites(query, transaction);
  return {
    accept: (input: NewTask, body: string, leaseMs: number) => accept({ input, body, leaseMs }),
    claim,
    succeed: (run: OpenRun, breed: string, subBreed: string | null, urls: string[], withPhotos: boolean) =>
      succeed({ run, breed, subBreed, urls, withPhotos }),

    finishRun: (run, outcome, error, retryDelayMs) =>
      transaction((q) => runAwaiting(flows.finishRun(postgresSteps(q), run, outcome, error, retryDelayMs))),

    failPoison: async (taskId, error) =>
      task(
        (
          await query(
            `UPDATE "Task" SET state = '${FAILURE}', error = $2, "finishedAt" = ${NOW}, "retryAt" = NULL, "updatedAt" = ${NOW} WHERE id = $1 AND ${guard("failPoison")} RETURNING *`,
            [taskId, error],
          )
        )[0],
      ),

    revoke: async (taskId) =>
      task(
        (
          await query(
            `UPDATE "Task" SET state = '${REVOKED}', "finishedAt" = ${NOW}, "retryAt" = NULL, error = CASE WHEN "attemptCount" > 0 THEN 'cancelled while it waited to try again' ELSE 'cancelled before it ran' END, "updatedAt" = ${NOW} WHERE id = $1 AND ${guard("revoke")} RETURNING *`,
            [taskId],
          )
        )[0],
      ),

    stop: (taskId, error) => transaction((q) => runAwaiting(flows.stop(postgresSteps(q), taskId, error))),
    rerun: (taskIds, by, leaseMs, trace) =>
      transaction((q) => runAwaiting(flows.rerun(postgresSteps(q), taskIds, by, leaseMs, trace))),

    task: async (taskId) => task((await query(`SELECT * FROM "Task" WHERE id = $1`, [taskId]))[0]),

    leaseOutbox: async (limit, leaseMs, minAgeMs) => {
      const rows = await query(
        `UPDATE "OutboxMessage" SET "leaseUntil" = ${nowPlus(1)} WHERE id IN (
           SELECT id FROM "OutboxMessage" WHERE "sentAt" IS NULL AND ("leaseUntil" IS NULL OR "leaseUntil" < ${NOW}) AND "createdAt" <= ${NOW} - $2 * interval '1 millisecond'
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id, "taskId", body, attempt`,
        [leaseMs, minAgeMs, limit],
      );
      return (rows as unknown as OutboxJob[]).sort((a, b) => a.id - b.id);
    },

    markSent: (jobs, withTasks) => markSent({ jobs, withTasks }),

    markUnsent: async (ids, error) =>
      void (await query(
        `UPDATE "OutboxMessage" SET tries = tries + 1, "lastError" = $2, "leaseUntil" = NULL WHERE id = ANY($1::int[])`,
        [ids, error],
      )),
    release: async (ids) =>
      void (await query(
        `UPDATE "OutboxMessage" SET "leaseUntil" = NULL WHERE id = ANY($1::int[]) AND "sentAt" IS NULL`,
        [ids],
      )),
    outboxBacklog: async () =>
      Number((await query(`SELECT count(*) AS n FROM "OutboxMessage" WHERE "sentAt" IS NULL`))[0]!.n),

    recover: (graceMs, limit, pendingAfterMs) =>
      transaction((q) => runAwaiting(flows.recover(postgresSteps(q), graceMs, limit, pendingAfterMs))),

    workerSeen: async (worker: WorkerSign) =>
      void (await query(
        `INSERT INTO "Worker" (id, host, pid, "startedAt", "lastSeenAt") VALUES ($1, $2, $3, $4, ${NOW}) ON CONFLICT (id) DO UPDATE SET "lastSeenAt" = EXCLUDED."lastSeenAt"`,
        [worker.id, worker.host, worker.pid, iso(worker.startedAt)],
      )),
    prune: async (olderThanMs, batch) => {
      const before = `${NOW} - $1 * interval '1 millisecond'`;
      const outbox = await pool.query(
        `DELETE FROM "OutboxMessage" WHERE id IN (SELECT id FROM "OutboxMessage" WHERE "sentAt" < ${before} ORDER BY "sentAt" LIMIT $2)`,
        [olderThanMs, batch],
      );
      const attempts = await pool.query(
        `DELETE FROM "Attempt" WHERE id IN (SELECT a.id FROM "Attempt" a JOIN "Task" t ON t.id = a."taskId"
           WHERE t.state IN (${FINISHED_STATES.map((state) => `'${state}'`).join(", ")}) AND t."finishedAt" < ${before} LIMIT $2)`,
        [olderThanMs, batch],
      );
      return { outbox: outbox.rowCount ?? 0, attempts: attempts.rowCount ?? 0 };
    },
    forgetWorkersSilentFor: async (ms) =>
      void (await query(`DELETE FROM "Worker" WHERE "lastSeenAt" < ${NOW} - $1 * interval '1 millisecond'`, [ms])),
    close: () => pool.end(),

    newestTasks: async (take) =>
      (await query(
        `SELECT t.*, (SELECT count(*)::int FROM "TaskPhoto" tp WHERE tp."taskId" = t.id) AS "photosInGallery"
         FROM "Task" t ORDER BY t."createdAt" DESC, t.id DESC LIMIT $1`,
        [take],
      )) as unknown as (Task & { photosInGallery: number })[],
    photoTotal: async () =>
      Number((await query(`SELECT COALESCE(sum(value), 0) AS n FROM "Counter" WHERE name LIKE 'photos%'`))[0]!.n),
    photos: async (from, skip, take) =>
      (await query(
        `SELECT id, url, breed, "subBreed", "createdAt" FROM "Photo" ORDER BY id ${from === "newest" ? "DESC" : "ASC"} LIMIT $1 OFFSET $2`,
        [take, skip],
      )) as unknown as Photo[],
  };
}
