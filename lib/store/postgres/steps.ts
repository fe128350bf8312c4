// The shared flows' steps (../flows.ts) in PostgreSQL's dialect, on one transaction's
// connection. Each yields its query's promise; runAwaiting gives the rows back. Row locks
// (FOR UPDATE SKIP LOCKED) let several sweepers on several machines pass each other by.
import type { Task } from "../../../generated/prisma/client.ts";
import { TaskState } from "../../../generated/prisma/enums.ts";
import type { Step, Steps } from "../flows.ts";
import type { OutboxJob } from "../index.ts";
import { guard, NOW, nowPlus, type Query, type Row } from "./query.ts";

const { PENDING, STARTED, FAILURE, RETRY, REVOKED } = TaskState;

function* rows(q: Query, text: string, values: unknown[]): Step<Row[]> {
  return (yield q(text, values)) as Row[];
}
function* tasks(q: Query, text: string, values: unknown[]): Step<Task[]> {
  return (yield* rows(q, text, values)) as unknown as Task[];
}
function* done(q: Query, text: string, values: unknown[]): Step<void> {
  yield* rows(q, text, values);
}

export function postgresSteps(q: Query): Steps {
  return {
    *endTask(run, outcome, error, retryDelayMs) {
      const [task] =
        outcome === "RETRY"
          ? yield* tasks(
              q,
              `UPDATE "Task" SET state = '${RETRY}', error = $3, "retryAt" = ${nowPlus(4)}, "updatedAt" = ${NOW}
               WHERE id = $1 AND ${guard("retry")} AND "attemptCount" = $2 RETURNING *`,
              [run.taskId, run.number, error, retryDelayMs ?? 0],
            )
          : yield* tasks(
              q,
              `UPDATE "Task" SET state = '${FAILURE}', error = $3, "finishedAt" = ${NOW}, "updatedAt" = ${NOW}
               WHERE id = $1 AND ${guard("fail")} AND "attemptCount" = $2 RETURNING *`,
              [run.taskId, run.number, error],
            );
      return task;
    },
    closeAttempt: (attemptId, outcome, error, retryDelayMs) =>
      done(
        q,
        `UPDATE "Attempt" SET outcome = $2, "finishedAt" = ${NOW}, error = $3, "retryDelayMs" = $4 WHERE id = $1`,
        [attemptId, outcome, error, retryDelayMs],
      ),
    skipAttempt: (attemptId) =>
      done(
        q,
        `UPDATE "Attempt" SET outcome = 'SKIPPED', "finishedAt" = ${NOW}, error = 'a later run of this task took over'
         WHERE id = $1 AND (outcome IS NULL OR outcome <> '${REVOKED}')`,
        [attemptId],
      ),
    *stopTask(taskId, error) {
      const [task] = yield* tasks(
        q,
        `UPDATE "Task" SET state = '${REVOKED}', "finishedAt" = ${NOW}, "retryAt" = NULL, error = $2, "updatedAt" = ${NOW}
         WHERE id = $1 AND ${guard("stop")} RETURNING *`,
        [taskId, error],
      );
      return task;
    },
    stopOpenAttempts: (taskId, error) =>
      done(
        q,
        `UPDATE "Attempt" SET outcome = '${REVOKED}', "finishedAt" = ${NOW}, error = $2 WHERE "taskId" = $1 AND outcome IS NULL`,
        [taskId, error],
      ),
    rerunTasks: (taskIds, by) =>
      tasks(
        q,
        `UPDATE "Task" SET state = '${PENDING}', "attemptBase" = "attemptCount", error = NULL, "queuedAt" = NULL,
           "startedAt" = NULL, "finishedAt" = NULL, "retryAt" = NULL, "retriedAt" = ${NOW}, "retriedBy" = $2, "updatedAt" = ${NOW}
         WHERE id = ANY($1) AND ${guard("rerun")} RETURNING *`,
        [taskIds, by],
      ),
    // dialect: one INSERT for all, from arrays, where SQLite runs a prepared one per row.
    *queueJobs(jobs, leaseMs) {
      return (yield* rows(
        q,
        `INSERT INTO "OutboxMessage" ("taskId", body, "createdAt", tries, "leaseUntil", attempt)
         SELECT t, b, ${NOW}, 0, ${nowPlus(3)}, a FROM unnest($1::text[], $2::text[], $4::int[]) AS j(t, b, a)
         RETURNING id, "taskId", body, attempt`,
        [jobs.map((j) => j.taskId), jobs.map((j) => j.body), leaseMs, jobs.map((j) => j.attempt)],
      )) as unknown as OutboxJob[];
    },
    // A retry may arrive up to its own delay ("retryAt" - "updatedAt") late; the lease is
    // "updatedAt", and "retryAt" stays due so the claim takes the job sent again: see ../sqlite/statements.ts.
    overdueRetries: (graceMs, limit) =>
      tasks(
        q,
        `UPDATE "Task" SET "retryAt" = ${NOW}, "updatedAt" = ${NOW} WHERE id IN (
           SELECT id FROM "Task" WHERE state = '${RETRY}' AND "retryAt" + ("retryAt" - "updatedAt") < ${cutoff(1)}
           ORDER BY "retryAt" LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING *`,
        [graceMs, limit],
      ),
    // Locks the task too, so the attempt number read below is the one the sweep saw.
    *lostRuns(graceMs, limit) {
      const lost = yield* rows(
        q,
        `UPDATE "Attempt" SET outcome = 'LOST', "finishedAt" = ${NOW},
           error = COALESCE(error, 'the worker stopped sending heartbeats; the job was sent again') WHERE id IN (
           SELECT a.id FROM "Task" t JOIN "Attempt" a ON a."taskId" = t.id AND a.number = t."attemptCount"
           LEFT JOIN "Worker" w ON w.id = a."workerId"
           WHERE t.state = '${STARTED}' AND ((a.outcome IS NULL AND a."startedAt" < ${cutoff(1)}
               AND (w."lastSeenAt" IS NULL OR w."lastSeenAt" < ${cutoff(1)}))
             OR (a.outcome = 'LOST' AND a."finishedAt" < ${cutoff(1)}))
           LIMIT $2 FOR UPDATE OF t, a SKIP LOCKED) RETURNING "taskId"`,
        [graceMs, limit],
      );
      if (lost.length === 0) return [];
      return yield* tasks(q, `SELECT * FROM "Task" WHERE id = ANY($1::text[])`, [lost.map((r) => r.taskId)]);
    },
    // PENDING long after the broker took its job, never claimed: see ../sqlite/statements.ts.
    stalePending: (pendingAfterMs, limit) =>
      tasks(
        q,
        `UPDATE "Task" SET "retryAt" = ${nowPlus(1)}, "updatedAt" = ${NOW} WHERE id IN (
           SELECT id FROM "Task" WHERE state = '${PENDING}' AND "queuedAt" < ${cutoff(1)}
             AND ("retryAt" IS NULL OR "retryAt" < ${NOW})
           ORDER BY "queuedAt" LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING *`,
        [pendingAfterMs, limit],
      ),
  };
}

/** NOW less the milliseconds given as the parameter $n. */
const cutoff = (n: number) => `(${NOW} - $${n} * interval '1 millisecond')`;
