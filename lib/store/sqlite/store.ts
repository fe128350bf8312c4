// The job pipeline's writes on SQLite, through better-sqlite3: each a synchronous
// transaction with no await inside, committed with the others asked for in the same turn
// of the event loop (lib/store/sqlite/connection.ts's writer), so the write lock is held for microseconds.
// finishRun, stop, rerun and recover are the shared flows of ../flows.ts on this dialect's
// steps (./steps.ts); the rest say here what they do.
import type { Task } from "../../../generated/prisma/client.ts";
import { photoFromRow, taskFromRow, type PhotoRow, type TaskRow } from "./rows.ts";
import { gatherWrites, openSql, sqlTime, writer, type Sql } from "./connection.ts";
import { toPhotoView } from "../../lifecycle/shapes.ts";
import type { Claim, NewTask, OpenRun, OutboxJob, TaskStore, WorkerSign } from "../index.ts";
import { prepareStatements } from "./statements.ts";
import { sqliteSteps } from "./steps.ts";
import * as flows from "../flows.ts";
import { runNow } from "../flows.ts";

export function openSqliteStore(url: string, commitWindowMs = 0): TaskStore {
  const sql = openSql(url);
  gatherWrites(sql, commitWindowMs);
  return sqliteStore(sql);
}

export function sqliteStore(sql: Sql): TaskStore {
  const statements = prepareStatements(sql);
  const { task, attempt, photo, outbox, recover, retention, pages } = statements;
  const now = () => sqlTime(new Date());
  const current = (taskId: string): Task | undefined => {
    const row = task.get.get(taskId) as TaskRow | undefined;
    return row && taskFromRow(row);
  };
  /** One guarded UPDATE ... RETURNING of a task, as its own transaction. */
  const change = (statement: { get(params: object): unknown }) =>
    writer(sql, (params: object) => {
      const row = statement.get({ now: now(), ...params }) as TaskRow | undefined;
      return row && taskFromRow(row);
    });

  const accept = writer(sql, (input: NewTask, body: string, leaseMs: number) => {
    const at = now();
    const row = task.insert.get(input.id, input.breed, input.subBreed, input.limit, at, at) as TaskRow;
    const job = outbox.insert.get(input.id, body, at, sqlTime(new Date(Date.now() + leaseMs)), 1) as OutboxJob;
    return { task: taskFromRow(row), job };
  });

  const steps = () => sqliteSteps(statements, new Date());
  const rerun = writer(sql, (taskIds: string[], by: string, leaseMs: number, trace?: string) =>
    runNow(flows.rerun(steps(), taskIds, by, leaseMs, trace)),
  );

  const claim = writer(
    sql,
    (job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Claim => {
      const at = now();
      const row = task.claim.get({
        taskId: job.taskId,
        attempt: job.attempt,
        redelivered: job.redelivered ? 1 : 0,
        now: at,
      }) as TaskRow | undefined;
      if (!row) {
        const found = current(job.taskId);
        return found ? { kind: "skip", state: found.state } : { kind: "missing" };
      }
      // A run still open here belonged to a worker that died mid-job.
      attempt.loseOpen.run({ taskId: job.taskId, now: at });
      const { id } = attempt.open.get(job.taskId, row.attemptCount, job.workerId, at) as { id: number };
      return { kind: "run", task: taskFromRow(row), taskId: job.taskId, attemptId: id, number: row.attemptCount };
    },
  );

  const succeed = writer(
    sql,
    (run: OpenRun, breed: string, subBreed: string | null, urls: string[], withPhotos: boolean) => {
      const at = now();
      const row = task.succeed.get({ taskId: run.taskId, number: run.number, photoCount: urls.length, now: at }) as
        TaskRow | undefined;
      if (!row) {
        attempt.skip.run({ attemptId: run.attemptId, now: at });
        return undefined;
      }
      photo.unlinkAll.run(run.taskId);
      const list = JSON.stringify(urls);
      photo.store.run({ urls: list, breed, subBreed, now: at });
      photo.link.run({ urls: list, taskId: run.taskId });
      attempt.close.run({ attemptId: run.attemptId, outcome: "SUCCESS", now: at, error: null, retryDelayMs: null });
      if (!withPhotos) return { task: taskFromRow(row) };
      return {
        task: taskFromRow(row),
        photos: (photo.ofTask.all(run.taskId) as PhotoRow[]).map((p) => toPhotoView(photoFromRow(p))),
      };
    },
  );

  const finishRun = writer(
    sql,
    (run: OpenRun, outcome: "FAILURE" | "RETRY", error: string, retryDelayMs: number | null) =>
      runNow(flows.finishRun(steps(), run, outcome, error, retryDelayMs)),
  );

  const failPoison = change(task.failPoison);
  const revoke = change(task.revoke);
  const stop = writer(sql, (taskId: string, error: string) => runNow(flows.stop(steps(), taskId, error)));

  const leaseOutbox = writer(sql, (limit: number, leaseMs: number, minAgeMs: number) => {
    const at = Date.now();
    const rows = outbox.lease.all({
      now: sqlTime(new Date(at)),
      until: sqlTime(new Date(at + leaseMs)),
      bornBefore: sqlTime(new Date(at - minAgeMs)),
      limit,
    });
    return (rows as OutboxJob[]).sort((a, b) => a.id - b.id);
  });

  const markSent = writer(sql, (messages: { id: number; taskId: string }[], withTasks: boolean) => {
    const at = now();
    outbox.sent.run({ now: at, ids: JSON.stringify(messages.map((m) => m.id)) });
    const params = { now: at, taskIds: JSON.stringify(messages.map((m) => m.taskId)) };
    if (!withTasks) {
      outbox.queued.run(params);
      return [];
    }
    return (outbox.queuedTasks.all(params) as TaskRow[]).map(taskFromRow);
  });

  const markUnsent = writer(
    sql,
    (ids: number[], error: string) => void outbox.unsent.run({ ids: JSON.stringify(ids), error }),
  );
  const release = writer(sql, (ids: number[]) => void outbox.release.run({ ids: JSON.stringify(ids) }));

  const recoverRuns = writer(sql, (graceMs: number, limit: number, pendingAfterMs: number) =>
    runNow(flows.recover(steps(), graceMs, limit, pendingAfterMs)),
  );

  const workerSeen = writer(
    sql,
    (worker: WorkerSign) =>
      void recover.workerSeen.run({ ...worker, startedAt: sqlTime(worker.startedAt), now: now() }),
  );
  const prune = writer(sql, (olderThanMs: number, batch: number) => {
    const params = { before: sqlTime(new Date(Date.now() - olderThanMs)), batch };
    return { outbox: retention.outbox.run(params).changes, attempts: retention.attempts.run(params).changes };
  });
  const forgetWorkers = writer(sql, (ms: number) => void recover.forgetWorkers.run(sqlTime(new Date(Date.now() - ms))));

  return {
    accept,
    claim,
    succeed,
    finishRun,
    failPoison: (taskId, error) => failPoison({ taskId, error }),
    revoke: (taskId) => revoke({ taskId }),
    stop,
    rerun,
    task: async (taskId) => current(taskId),
    leaseOutbox,
    markSent,
    markUnsent,
    release,
    outboxBacklog: async () => (outbox.pending.get() as { n: number }).n,
    recover: recoverRuns,
    workerSeen,
    prune,
    forgetWorkersSilentFor: forgetWorkers,
    close: async () => void sql.close(),

    newestTasks: async (take) =>
      (pages.newestTasks.all(take) as (TaskRow & { photosInGallery: number })[]).map((row) => ({
        ...taskFromRow(row),
        photosInGallery: row.photosInGallery,
      })),
    photoTotal: async () => (pages.photoTotal.get() as { n: number }).n,
    photos: async (from, skip, take) =>
      ((from === "newest" ? pages.newestPhotos : pages.oldestPhotos).all(take, skip) as PhotoRow[]).map(photoFromRow),
  };
}
