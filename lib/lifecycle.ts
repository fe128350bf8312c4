// The task lifecycle: every change of a task's state is one of these named transitions,
// each allowed only from the states TRANSITIONS lists (the guard is part of its UPDATE, so
// two processes racing for one task cannot both win). Each runs as one synchronous SQLite
// transaction: no await inside, so the write lock is held for microseconds. After the
// commit it tells live pages what changed, once per state change.
import type { Task } from "../generated/prisma/client.ts";
import { TaskState } from "../generated/prisma/enums.ts";
import { sqlTime, type Sql } from "./sql.ts";
import type { EventSink } from "./events.ts";
import { taskFromRow, type TaskRow } from "./rows.ts";
import { CANCELLABLE_STATES, toPhotoView, toTaskView, type PhotoView } from "./views.ts";

const { PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED } = TaskState;

export const TRANSITIONS = {
  claim: { from: [PENDING, RETRY, STARTED], to: STARTED },
  retry: { from: [STARTED], to: RETRY },
  succeed: { from: [STARTED], to: SUCCESS },
  fail: { from: [STARTED], to: FAILURE },
  /** A job message that cannot be run fails its task, wherever it was. */
  failPoison: { from: [PENDING, STARTED, RETRY], to: FAILURE },
  revoke: { from: CANCELLABLE_STATES, to: REVOKED },
} as const satisfies Record<string, { from: readonly TaskState[]; to: TaskState }>;

export type Transition = keyof typeof TRANSITIONS;

/** Stored error text is cut here; a person sees that it was shortened. */
export const MAX_ERROR_LENGTH = 500;

export function shorten(text: string, max = MAX_ERROR_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 20)}… (shortened)`;
}

/** A run a worker holds: only the latest run of a task may finish it. */
export interface OpenRun {
  taskId: string;
  attemptId: number;
  number: number;
}

export type Claim = ({ kind: "run"; task: Task } & OpenRun) | { kind: "skip"; state: TaskState } | { kind: "missing" };

export type Revoke = { kind: "revoked"; task: Task } | { kind: "refused"; task: Task } | { kind: "missing" };

const inList = (states: readonly TaskState[]) => states.map((s) => `'${s}'`).join(", ");
const guard = (name: Transition) => `state IN (${inList(TRANSITIONS[name].from)})`;

export function createLifecycle(sql: Sql, events: EventSink) {
  const task = {
    insert: sql.prepare(`INSERT INTO Task (id, breed, subBreed, "limit", state, photoCount, attempts, createdAt, updatedAt)
      VALUES (?, ?, ?, ?, '${PENDING}', 0, 0, ?, ?) RETURNING *`),
    get: sql.prepare("SELECT * FROM Task WHERE id = ?"),
    claim: sql.prepare(`UPDATE Task SET state = '${STARTED}', attempts = attempts + 1, retryAt = NULL,
        startedAt = COALESCE(startedAt, @now), updatedAt = @now
      WHERE id = @taskId AND ((${guard("claim")} AND attempts < @attempt) OR (@redelivered = 1 AND state = '${STARTED}')) RETURNING *`),
    succeed: sql.prepare(`UPDATE Task SET state = '${SUCCESS}', photoCount = @photoCount, finishedAt = @now, error = NULL, updatedAt = @now
      WHERE id = @taskId AND ${guard("succeed")} AND attempts = @number RETURNING *`),
    fail: sql.prepare(`UPDATE Task SET state = '${FAILURE}', error = @error, finishedAt = @now, updatedAt = @now
      WHERE id = @taskId AND ${guard("fail")} AND attempts = @number RETURNING *`),
    retry: sql.prepare(`UPDATE Task SET state = '${RETRY}', error = @error, retryAt = @retryAt, updatedAt = @now
      WHERE id = @taskId AND ${guard("retry")} AND attempts = @number RETURNING *`),
    failPoison: sql.prepare(`UPDATE Task SET state = '${FAILURE}', error = @error, finishedAt = @now, retryAt = NULL, updatedAt = @now
      WHERE id = @taskId AND ${guard("failPoison")} RETURNING *`),
    revoke: sql.prepare(`UPDATE Task SET state = '${REVOKED}', finishedAt = @now, retryAt = NULL, error = 'cancelled before it ran', updatedAt = @now
      WHERE id = @taskId AND ${guard("revoke")} RETURNING *`),
  };
  const attempt = {
    loseOpen: sql.prepare(`UPDATE Attempt SET outcome = 'LOST', finishedAt = @now,
        error = 'the worker stopped before finishing; the job was delivered again' WHERE taskId = @taskId AND outcome IS NULL`),
    open: sql.prepare("INSERT INTO Attempt (taskId, number, workerId, startedAt) VALUES (?, ?, ?, ?) RETURNING id"),
    close: sql.prepare("UPDATE Attempt SET outcome = @outcome, finishedAt = @now, error = @error, retryDelayMs = @retryDelayMs WHERE id = @attemptId"),
  };
  const photo = {
    unlinkAll: sql.prepare("DELETE FROM TaskPhoto WHERE taskId = ?"),
    // On a known url this touches nothing but returns the stored row, so it is linked, not stored twice.
    upsert: sql.prepare(`INSERT INTO Photo (url, breed, subBreed, createdAt) VALUES (?, ?, ?, ?)
      ON CONFLICT(url) DO UPDATE SET url = excluded.url RETURNING id, url, breed, subBreed, createdAt`),
    link: sql.prepare("INSERT INTO TaskPhoto (taskId, photoId, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
  };
  const outbox = {
    insert: sql.prepare("INSERT INTO OutboxMessage (taskId, body, createdAt, tries) VALUES (?, ?, ?, 0)"),
    // Taken before publishing, so two relays never publish one row (a crash can still repeat it).
    lease: sql.prepare(`UPDATE OutboxMessage SET leaseUntil = @until WHERE id IN (
        SELECT id FROM OutboxMessage WHERE sentAt IS NULL AND (leaseUntil IS NULL OR leaseUntil < @now) AND createdAt <= @bornBefore
        ORDER BY id LIMIT @limit) RETURNING id, taskId, body`),
    sent: sql.prepare("UPDATE OutboxMessage SET sentAt = @now, tries = tries + 1, leaseUntil = NULL WHERE id IN (SELECT value FROM json_each(@ids))"),
    // The broker may deliver a job before its confirm is back: queued is never after started.
    queued: sql.prepare(`UPDATE Task SET queuedAt = MIN(@now, COALESCE(startedAt, @now)), updatedAt = @now
      WHERE id IN (SELECT value FROM json_each(@taskIds)) AND queuedAt IS NULL RETURNING *`),
    unsent: sql.prepare("UPDATE OutboxMessage SET tries = tries + 1, lastError = @error, leaseUntil = NULL WHERE id IN (SELECT value FROM json_each(@ids))"),
    pending: sql.prepare("SELECT count(*) AS n FROM OutboxMessage WHERE sentAt IS NULL"),
  };
  const recover = {
    // The lease moves retryAt on, so one sweeper re-sends a task and the others pass it by.
    overdueRetries: sql.prepare(`UPDATE Task SET retryAt = @lease, updatedAt = @now WHERE id IN (
        SELECT id FROM Task WHERE state = '${RETRY}' AND retryAt < @cutoff ORDER BY retryAt LIMIT @limit) AND state = '${RETRY}' RETURNING *`),
    // The latest run of a STARTED task whose worker went silent, or one a sweep already
    // marked lost whose re-send never started; finishedAt is the lease.
    lostRuns: sql.prepare(`UPDATE Attempt SET outcome = 'LOST', finishedAt = @now,
        error = COALESCE(error, 'the worker stopped sending heartbeats; the job was sent again') WHERE id IN (
        SELECT a.id FROM Task t JOIN Attempt a ON a.taskId = t.id AND a.number = t.attempts
        LEFT JOIN Worker w ON w.id = a.workerId
        WHERE t.state = '${STARTED}' AND (
          (a.outcome IS NULL AND a.startedAt < @cutoff AND (w.lastSeenAt IS NULL OR w.lastSeenAt < @cutoff))
          OR (a.outcome = 'LOST' AND a.finishedAt < @cutoff))
        LIMIT @limit) RETURNING taskId`),
    workerSeen: sql.prepare(`INSERT INTO Worker (id, host, pid, startedAt, lastSeenAt) VALUES (@id, @host, @pid, @startedAt, @now)
      ON CONFLICT(id) DO UPDATE SET lastSeenAt = excluded.lastSeenAt`),
    forgetWorkers: sql.prepare("DELETE FROM Worker WHERE lastSeenAt < ?"),
  };

  const now = () => sqlTime(new Date());
  const closeAttempt = (attemptId: number, outcome: string, at: string, error: string | null = null, retryDelayMs: number | null = null) =>
    attempt.close.run({ attemptId, outcome, now: at, error, retryDelayMs });
  const emit = (row: Task, photos?: PhotoView[]) => events.emit({ type: "task", task: toTaskView(row), ...(photos ? { photos } : {}) });

  const accept = sql.transaction((input: { id: string; breed: string; subBreed: string | null; limit: number }, body: string) => {
    const at = now();
    const row = task.insert.get(input.id, input.breed, input.subBreed, input.limit, at, at) as TaskRow;
    outbox.insert.run(input.id, body, at);
    return taskFromRow(row);
  });

  const claim = sql.transaction((job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Claim => {
    const at = now();
    const row = task.claim.get({ taskId: job.taskId, attempt: job.attempt, redelivered: job.redelivered ? 1 : 0, now: at }) as TaskRow | undefined;
    if (!row) {
      const current = task.get.get(job.taskId) as TaskRow | undefined;
      return current ? { kind: "skip", state: current.state as TaskState } : { kind: "missing" };
    }
    // A run still open here belonged to a worker that died mid-job.
    attempt.loseOpen.run({ taskId: job.taskId, now: at });
    const { id } = attempt.open.get(job.taskId, row.attempts, job.workerId, at) as { id: number };
    return { kind: "run", task: taskFromRow(row), taskId: job.taskId, attemptId: id, number: row.attempts };
  });

  const succeed = sql.transaction((run: OpenRun, breed: string, subBreed: string | null, urls: string[]) => {
    const at = now();
    const row = task.succeed.get({ taskId: run.taskId, number: run.number, photoCount: urls.length, now: at }) as TaskRow | undefined;
    if (!row) {
      closeAttempt(run.attemptId, "SKIPPED", at, "a later run of this task took over");
      return undefined;
    }
    photo.unlinkAll.run(run.taskId);
    const stored = urls.map((url, position) => {
      const p = photo.upsert.get(url, breed, subBreed, at) as { id: number; url: string; breed: string; subBreed: string | null; createdAt: string };
      photo.link.run(run.taskId, p.id, position);
      return toPhotoView({ ...p, createdAt: new Date(p.createdAt) });
    });
    closeAttempt(run.attemptId, "SUCCESS", at);
    return { task: taskFromRow(row), photos: stored };
  });

  const finishRun = sql.transaction((run: OpenRun, outcome: "FAILURE" | "RETRY", error: string, retryDelayMs: number | null) => {
    const at = now();
    const params = { taskId: run.taskId, number: run.number, error, now: at };
    const row = (outcome === "RETRY"
      ? task.retry.get({ ...params, retryAt: sqlTime(new Date(Date.now() + (retryDelayMs ?? 0))) })
      : task.fail.get(params)) as TaskRow | undefined;
    closeAttempt(run.attemptId, outcome, at, error, retryDelayMs);
    return row && taskFromRow(row);
  });

  const markSent = sql.transaction((messages: { id: number; taskId: string }[]) => {
    const at = now();
    outbox.sent.run({ now: at, ids: JSON.stringify(messages.map((m) => m.id)) });
    return (outbox.queued.all({ now: at, taskIds: JSON.stringify(messages.map((m) => m.taskId)) }) as TaskRow[]).map(taskFromRow);
  });

  const lostRuns = sql.transaction((cutoff: string, limit: number) => {
    const lost = recover.lostRuns.all({ now: now(), cutoff, limit }) as { taskId: string }[];
    return lost.map(({ taskId }) => taskFromRow(task.get.get(taskId) as TaskRow));
  });

  return {
    /** A new task, PENDING, and its job in the outbox: both or neither. */
    async accept(input: { id: string; breed: string; subBreed: string | null; limit: number }, body: string): Promise<Task> {
      const row = accept(input, body);
      emit(row);
      return row;
    },

    /** STARTED for this delivery, with a new attempt; or why this delivery has nothing to do. */
    async claim(job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Promise<Claim> {
      const result = claim(job);
      if (result.kind === "run") emit(result.task);
      return result;
    },

    /** SUCCESS with its photos (at most what the caller passes); undefined if a later run took over. */
    async succeed(run: OpenRun & { breed: string; subBreed: string | null }, urls: string[]) {
      const result = succeed(run, run.breed, run.subBreed, urls);
      if (result) emit(result.task, result.photos);
      return result;
    },

    async retry(run: OpenRun, error: string, delayMs: number): Promise<Task | undefined> {
      const row = finishRun(run, "RETRY", shorten(error), Math.round(delayMs));
      if (row) emit(row);
      return row;
    },

    async fail(run: OpenRun, error: string): Promise<Task | undefined> {
      const row = finishRun(run, "FAILURE", shorten(error), null);
      if (row) emit(row);
      return row;
    },

    async failPoison(taskId: string, error: string): Promise<Task | undefined> {
      const row = task.failPoison.get({ taskId, error: shorten(error), now: now() }) as TaskRow | undefined;
      const result = row && taskFromRow(row);
      if (result) emit(result);
      return result;
    },

    async revoke(taskId: string): Promise<Revoke> {
      const row = task.revoke.get({ taskId, now: now() }) as TaskRow | undefined;
      if (row) {
        const revoked = taskFromRow(row);
        emit(revoked);
        return { kind: "revoked", task: revoked };
      }
      const current = task.get.get(taskId) as TaskRow | undefined;
      return current ? { kind: "refused", task: taskFromRow(current) } : { kind: "missing" };
    },

    /** Leases up to `limit` unsent outbox rows written at least minAgeMs ago, oldest first. */
    async leaseOutbox(limit: number, leaseMs: number, minAgeMs = 0): Promise<{ id: number; taskId: string; body: string }[]> {
      const at = Date.now();
      const rows = outbox.lease.all({ now: sqlTime(new Date(at)), until: sqlTime(new Date(at + leaseMs)), bornBefore: sqlTime(new Date(at - minAgeMs)), limit });
      return (rows as { id: number; taskId: string; body: string }[]).sort((a, b) => a.id - b.id);
    },

    /** The broker confirmed these jobs: sent, and their tasks queued, in one transaction. Returns the tasks that changed. */
    async markQueued(messages: { id: number; taskId: string }[]): Promise<Task[]> {
      if (messages.length === 0) return [];
      const tasks = markSent(messages);
      // Only news to this process's pages while the task waits: once a worker has it, its events tell more.
      for (const row of tasks) if (row.state === PENDING) events.emit({ type: "task", task: toTaskView(row) }, "local");
      return tasks;
    },

    /** The broker did not take these: they stay in the outbox, free for the next try. */
    async markUnsent(ids: number[], error: string): Promise<void> {
      if (ids.length > 0) outbox.unsent.run({ ids: JSON.stringify(ids), error: shorten(error) });
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
      const at = Date.now();
      const cutoff = sqlTime(new Date(at - graceMs));
      const overdue = (recover.overdueRetries.all({ now: sqlTime(new Date(at)), lease: sqlTime(new Date(at + graceMs)), cutoff, limit }) as TaskRow[]).map(taskFromRow);
      const lost = lostRuns(cutoff, limit);
      return [...overdue, ...lost].map((row) => ({ task: row, attempt: row.attempts + 1 }));
    },

    /** A worker's sign of life, read by recover() on other workers. */
    async workerSeen(worker: { id: string; host: string; pid: number; startedAt: Date }): Promise<void> {
      recover.workerSeen.run({ ...worker, startedAt: sqlTime(worker.startedAt), now: now() });
    },

    async forgetWorkersSilentFor(ms: number): Promise<void> {
      recover.forgetWorkers.run(sqlTime(new Date(Date.now() - ms)));
    },
  };
}

export type Lifecycle = ReturnType<typeof createLifecycle>;
