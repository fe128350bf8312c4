// The shared flows' steps (../flows.ts) in SQLite's dialect: prepared statements that answer
// at once, run inside the writer's synchronous transaction. `at` is the transaction's time.
import type { Task } from "../../../generated/prisma/client.ts";
import { answered, type Steps } from "../flows.ts";
import type { OutboxJob } from "../index.ts";
import { sqlTime } from "./connection.ts";
import { taskFromRow, type TaskRow } from "./rows.ts";
import type { prepareStatements } from "./statements.ts";

type Statements = ReturnType<typeof prepareStatements>;

export function sqliteSteps({ task, attempt, outbox, recover }: Statements, at: Date): Steps {
  const now = sqlTime(at);
  const later = (ms: number) => sqlTime(new Date(at.getTime() + ms));
  const earlier = (ms: number) => sqlTime(new Date(at.getTime() - ms));
  const one = (row: unknown) => (row ? taskFromRow(row as TaskRow) : undefined);
  const all = (rows: unknown[]) => (rows as TaskRow[]).map(taskFromRow);
  return {
    endTask: (run, outcome, error, retryDelayMs) => {
      const params = { taskId: run.taskId, number: run.number, error, now };
      const row =
        outcome === "RETRY" ? task.retry.get({ ...params, retryAt: later(retryDelayMs ?? 0) }) : task.fail.get(params);
      return answered(one(row));
    },
    closeAttempt: (attemptId, outcome, error, retryDelayMs) =>
      answered(void attempt.close.run({ attemptId, outcome, now, error, retryDelayMs })),
    skipAttempt: (attemptId) => answered(void attempt.skip.run({ attemptId, now })),
    stopTask: (taskId, error) => answered(one(task.stop.get({ taskId, error, now }))),
    stopOpenAttempts: (taskId, error) => answered(void attempt.stopOpen.run({ taskId, error, now })),
    rerunTasks: (taskIds, by) => answered(all(task.rerun.all({ ids: JSON.stringify(taskIds), by, now }))),
    // dialect: a prepared INSERT per job, where PostgreSQL inserts them all from arrays.
    queueJobs: (jobs, leaseMs) =>
      answered(
        jobs.map(
          ({ taskId, body, attempt }) => outbox.insert.get(taskId, body, now, later(leaseMs), attempt) as OutboxJob,
        ),
      ),
    overdueRetries: (graceMs, limit) =>
      answered(all(recover.overdueRetries.all({ now, cutoff: earlier(graceMs), limit }))),
    lostRuns: (graceMs, limit) => {
      const lost = recover.lostRuns.all({ now, cutoff: earlier(graceMs), limit }) as { taskId: string }[];
      return answered(lost.map(({ taskId }) => one(task.get.get(taskId)) as Task));
    },
    stalePending: (pendingAfterMs, limit) =>
      answered(
        all(
          recover.stalePending.all({
            now,
            lease: later(pendingAfterMs),
            pendingCutoff: earlier(pendingAfterMs),
            limit,
          }),
        ),
      ),
  };
}
