// The task lifecycle: every change of a task's state is one of these named transitions
// (accept, markQueued, claim, retry, succeed, fail, failPoison, revoke, recover), each
// allowed only from the states TRANSITIONS lists; the guard is part of its UPDATE, so two
// processes racing for one task cannot both win. Each runs as one synchronous SQLite
// transaction (lib/sql.ts's writer): no await inside, so the write lock is held for
// microseconds. After the commit it tells live pages what changed, once per state change.
import type { Task } from "../generated/prisma/client.ts";
import { TaskState } from "../generated/prisma/enums.ts";
import type { EventSink } from "./events.ts";
import { prepareStatements } from "./lifecycleSql.ts";
import { taskFromRow, timeFromRow, type TaskRow } from "./rows.ts";
import { sqlTime, writer, type Sql } from "./sql.ts";
import { toPhotoView, toTaskView, type PhotoView } from "./views.ts";

export { TRANSITIONS, type Transition } from "./transitions.ts";

/** Stored error text is cut here; a person sees that it was shortened. */
export const MAX_ERROR_LENGTH = 500;

export function shorten(text: string, max = MAX_ERROR_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 20)}… (shortened)`;
}

export interface NewTask {
  id: string;
  breed: string;
  subBreed: string | null;
  limit: number;
}

/** A job in the outbox, as a relay publishes it. */
export interface OutboxJob {
  id: number;
  taskId: string;
  body: string;
}

/** A run a worker holds: only the latest run of a task may finish it. */
export interface OpenRun {
  taskId: string;
  attemptId: number;
  number: number;
}

export type Claim = ({ kind: "run"; task: Task } & OpenRun) | { kind: "skip"; state: TaskState } | { kind: "missing" };

export type Revoke = { kind: "revoked"; task: Task } | { kind: "refused"; task: Task } | { kind: "missing" };


export function createLifecycle(sql: Sql, events: EventSink) {
  const { task, attempt, photo, outbox, recover } = prepareStatements(sql);
  const now = () => sqlTime(new Date());
  const closeAttempt = (attemptId: number, outcome: string, at: string, error: string | null = null, retryDelayMs: number | null = null) =>
    attempt.close.run({ attemptId, outcome, now: at, error, retryDelayMs });
  const emit = (row: Task, photos?: PhotoView[]) => events.emit({ type: "task", task: toTaskView(row), ...(photos ? { photos } : {}) });
  const current = (taskId: string) => {
    const row = task.get.get(taskId) as TaskRow | undefined;
    return row && taskFromRow(row);
  };
  /** One guarded UPDATE ... RETURNING of a task, as its own transaction. */
  const change = (statement: { get(params: object): unknown }) => writer(sql, (params: object) => {
    const row = statement.get({ now: now(), ...params }) as TaskRow | undefined;
    return row && taskFromRow(row);
  });

  const accept = writer(sql, (input: NewTask, body: string, leaseMs: number) => {
    const at = now();
    const row = task.insert.get(input.id, input.breed, input.subBreed, input.limit, at, at) as TaskRow;
    const job = outbox.insert.get(input.id, body, at, sqlTime(new Date(Date.now() + leaseMs))) as OutboxJob;
    return { task: taskFromRow(row), job };
  });

  const claim = writer(sql, (job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Claim => {
    const at = now();
    const row = task.claim.get({ taskId: job.taskId, attempt: job.attempt, redelivered: job.redelivered ? 1 : 0, now: at }) as TaskRow | undefined;
    if (!row) {
      const found = current(job.taskId);
      return found ? { kind: "skip", state: found.state } : { kind: "missing" };
    }
    // A run still open here belonged to a worker that died mid-job.
    attempt.loseOpen.run({ taskId: job.taskId, now: at });
    const { id } = attempt.open.get(job.taskId, row.attempts, job.workerId, at) as { id: number };
    return { kind: "run", task: taskFromRow(row), taskId: job.taskId, attemptId: id, number: row.attempts };
  });

  const succeed = writer(sql, (run: OpenRun, breed: string, subBreed: string | null, urls: string[]) => {
    const at = now();
    const row = task.succeed.get({ taskId: run.taskId, number: run.number, photoCount: urls.length, now: at }) as TaskRow | undefined;
    if (!row) {
      closeAttempt(run.attemptId, "SKIPPED", at, "a later run of this task took over");
      return undefined;
    }
    photo.unlinkAll.run(run.taskId);
    const list = JSON.stringify(urls);
    photo.store.run({ urls: list, breed, subBreed, now: at });
    photo.link.run({ urls: list, taskId: run.taskId });
    const rows = photo.ofTask.all(run.taskId) as { id: number; url: string; breed: string; subBreed: string | null; createdAt: string }[];
    const stored = rows.map((p) => toPhotoView({ ...p, createdAt: timeFromRow(p.createdAt) }));
    closeAttempt(run.attemptId, "SUCCESS", at);
    return { task: taskFromRow(row), photos: stored };
  });

  const finishRun = writer(sql, (run: OpenRun, outcome: "FAILURE" | "RETRY", error: string, retryDelayMs: number | null) => {
    const at = now();
    const params = { taskId: run.taskId, number: run.number, error, now: at };
    const row = (outcome === "RETRY"
      ? task.retry.get({ ...params, retryAt: sqlTime(new Date(Date.now() + (retryDelayMs ?? 0))) })
      : task.fail.get(params)) as TaskRow | undefined;
    closeAttempt(run.attemptId, outcome, at, error, retryDelayMs);
    return row && taskFromRow(row);
  });

  const failPoison = change(task.failPoison);
  const revoke = change(task.revoke);

  const leaseOutbox = writer(sql, (limit: number, leaseMs: number, minAgeMs: number) => {
    const at = Date.now();
    const rows = outbox.lease.all({ now: sqlTime(new Date(at)), until: sqlTime(new Date(at + leaseMs)), bornBefore: sqlTime(new Date(at - minAgeMs)), limit });
    return (rows as OutboxJob[]).sort((a, b) => a.id - b.id);
  });

  const markSent = writer(sql, (messages: { id: number; taskId: string }[]) => {
    const at = now();
    outbox.sent.run({ now: at, ids: JSON.stringify(messages.map((m) => m.id)) });
    return (outbox.queued.all({ now: at, taskIds: JSON.stringify(messages.map((m) => m.taskId)) }) as TaskRow[]).map(taskFromRow);
  });

  const markUnsent = writer(sql, (ids: number[], error: string) => void outbox.unsent.run({ ids: JSON.stringify(ids), error }));
  const release = writer(sql, (ids: number[]) => void outbox.release.run({ ids: JSON.stringify(ids) }));

  const recoverRuns = writer(sql, (graceMs: number, limit: number) => {
    const at = Date.now();
    const cutoff = sqlTime(new Date(at - graceMs));
    const overdue = (recover.overdueRetries.all({ now: sqlTime(new Date(at)), lease: sqlTime(new Date(at + graceMs)), cutoff, limit }) as TaskRow[]).map(taskFromRow);
    const lost = (recover.lostRuns.all({ now: sqlTime(new Date(at)), cutoff, limit }) as { taskId: string }[]).map(({ taskId }) => current(taskId)!);
    return [...overdue, ...lost];
  });

  const workerSeen = writer(sql, (worker: { id: string; host: string; pid: number; startedAt: Date }) =>
    void recover.workerSeen.run({ ...worker, startedAt: sqlTime(worker.startedAt), now: now() }),
  );
  const forgetWorkers = writer(sql, (before: string) => void recover.forgetWorkers.run(before));

  return {
    /**
     * A new task, PENDING, and its job in the outbox: both or neither. The job is leased to
     * the caller for leaseMs, to publish it without reading it back; after that any relay may.
     */
    async accept(input: NewTask, body: string, leaseMs = 30_000): Promise<{ task: Task; job: OutboxJob }> {
      const accepted = await accept(input, body, leaseMs);
      emit(accepted.task);
      return accepted;
    },

    /** STARTED for this delivery, with a new attempt; or why this delivery has nothing to do. */
    async claim(job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Promise<Claim> {
      const result = await claim(job);
      if (result.kind === "run") emit(result.task);
      return result;
    },

    /** SUCCESS with its photos (at most what the caller passes); undefined if a later run took over. */
    async succeed(run: OpenRun & { breed: string; subBreed: string | null }, urls: string[]) {
      const result = await succeed(run, run.breed, run.subBreed, urls);
      if (result) emit(result.task, result.photos);
      return result;
    },

    async retry(run: OpenRun, error: string, delayMs: number): Promise<Task | undefined> {
      const row = await finishRun(run, "RETRY", shorten(error), Math.round(delayMs));
      if (row) emit(row);
      return row;
    },

    async fail(run: OpenRun, error: string): Promise<Task | undefined> {
      const row = await finishRun(run, "FAILURE", shorten(error), null);
      if (row) emit(row);
      return row;
    },

    async failPoison(taskId: string, error: string): Promise<Task | undefined> {
      const row = await failPoison({ taskId, error: shorten(error) });
      if (row) emit(row);
      return row;
    },

    async revoke(taskId: string): Promise<Revoke> {
      const row = await revoke({ taskId });
      if (row) {
        emit(row);
        return { kind: "revoked", task: row };
      }
      const found = current(taskId);
      return found ? { kind: "refused", task: found } : { kind: "missing" };
    },

    /** Leases up to `limit` unsent outbox rows written at least minAgeMs ago, oldest first. */
    leaseOutbox(limit: number, leaseMs: number, minAgeMs = 0): Promise<OutboxJob[]> {
      return leaseOutbox(limit, leaseMs, minAgeMs);
    },

    /** The broker confirmed these jobs: sent, and their tasks queued, in one transaction. Returns the tasks that changed. */
    async markQueued(messages: { id: number; taskId: string }[]): Promise<Task[]> {
      if (messages.length === 0) return [];
      const tasks = await markSent(messages);
      // Only news to this process's pages while the task waits: once a worker has it, its events tell more.
      for (const row of tasks) if (row.state === TaskState.PENDING) events.emit({ type: "task", task: toTaskView(row) }, "local");
      return tasks;
    },

    /** The broker did not take these: they stay in the outbox, free for the next try. */
    async markUnsent(ids: number[], error: string): Promise<void> {
      if (ids.length > 0) await markUnsent(ids, shorten(error));
    },

    /** Gives up leases without trying: any relay may publish these jobs now. */
    async releaseOutbox(ids: number[]): Promise<void> {
      if (ids.length > 0) await release(ids);
    },

    async outboxBacklog(): Promise<number> {
      return (outbox.pending.get() as { n: number }).n;
    },

    /**
     * Tasks whose next run was lost: RETRY past its due time by graceMs (the retry message
     * never reached the broker), and STARTED runs whose worker has been silent for graceMs.
     * Each is returned to one caller only, to be sent to the work queue again.
     */
    async recover(graceMs: number, limit = 100): Promise<{ task: Task; attempt: number }[]> {
      return (await recoverRuns(graceMs, limit)).map((row) => ({ task: row, attempt: row.attempts + 1 }));
    },

    /** A worker's sign of life, read by recover() on other workers. */
    workerSeen(worker: { id: string; host: string; pid: number; startedAt: Date }): Promise<void> {
      return workerSeen(worker);
    },

    forgetWorkersSilentFor(ms: number): Promise<void> {
      return forgetWorkers(sqlTime(new Date(Date.now() - ms)));
    },
  };
}

export type Lifecycle = ReturnType<typeof createLifecycle>;
