// The task lifecycle: every change of a task's state goes through this module. The state
// changes (claim, retry, succeed, fail, failPoison, revoke, stop, rerun) are allowed only from the
// states lib/lifecycle/transitions.ts lists; accept creates a PENDING task, and markQueued and
// recover change no state (they stamp queuedAt, or lease a task to be sent again). The guard is part of the store's
// UPDATE, so two processes racing for one task cannot both win. After the commit it tells
// live pages what changed, once per state change.
import type { Task } from "../../generated/prisma/client.ts";
import { TaskState } from "../../generated/prisma/enums.ts";
import type { EventSink } from "../live/events.ts";
import { shorten } from "../platform/text.ts";
import { currentTraceparent } from "../platform/tracing.ts";
import type { Claim, NewTask, OpenRun, OutboxJob, TaskStore, WorkerSign } from "../store/index.ts";
import { toTaskView, type PhotoView } from "./shapes.ts";

export { TRANSITIONS, type Transition } from "./transitions.ts";
export type { Claim, NewTask, OpenRun, OutboxJob, TaskStore } from "../store/index.ts";

/**
 * A PENDING task is sent again when no run claimed it this many grace periods after it
 * was queued. Long, since a job may legitimately wait behind a backlog; a duplicate of
 * one that was only waiting costs a skipped delivery.
 */
export const PENDING_AFTER_GRACES = 10;

export { MAX_ERROR_LENGTH, shorten } from "../platform/text.ts";

export type Revoke = { kind: "revoked"; task: Task } | { kind: "refused"; task: Task } | { kind: "missing" };

export function createLifecycle(store: TaskStore, events: EventSink) {
  const tell = teller(events);
  return { ...runSteps(store, tell), ...changesByHand(store, tell), ...outboxSteps(store, tell), ...upkeep(store) };
}

/** Tells live pages of a committed change, once per change, only while some page listens. */
function teller(events: EventSink) {
  const wanted = (scope?: "local") => events.wanted?.(scope) ?? true;
  const emit = (row: Task, photos?: PhotoView[]) => {
    if (wanted()) events.emit({ type: "task", task: toTaskView(row), ...(photos ? { photos } : {}) });
  };
  const emitIf = (row: Task | undefined) => {
    if (row) emit(row);
    return row;
  };
  return { events, wanted, emit, emitIf };
}

type Tell = ReturnType<typeof teller>;

/** A task's way from submit to its end: accept, claim, then succeed, retry or fail. */
function runSteps(store: TaskStore, { wanted, emit, emitIf }: Tell) {
  return {
    /**
     * A new task, PENDING, and its job in the outbox: both or neither. The job is leased to
     * the caller for leaseMs, to publish it without reading it back; after that any relay may.
     */
    async accept(input: NewTask, body: string, leaseMs = 30_000): Promise<{ task: Task; job: OutboxJob }> {
      const accepted = await store.accept(input, body, leaseMs);
      emit(accepted.task);
      return accepted;
    },

    /** STARTED for this delivery, with a new attempt; or why this delivery has nothing to do. */
    async claim(job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Promise<Claim> {
      const result = await store.claim(job);
      if (result.kind === "run") emit(result.task);
      return result;
    },

    /** SUCCESS with its photos (at most what the caller passes); undefined if a later run took over. */
    async succeed(run: OpenRun & { breed: string; subBreed: string | null }, urls: string[]) {
      // The photos are read back only for the pages that would be told of them.
      const result = await store.succeed(run, run.breed, run.subBreed, urls, wanted());
      if (result) emit(result.task, result.photos);
      return result;
    },

    retry: async (run: OpenRun, error: string, delayMs: number) =>
      emitIf(await store.finishRun(run, "RETRY", shorten(error), Math.round(delayMs))),
    fail: async (run: OpenRun, error: string) => emitIf(await store.finishRun(run, "FAILURE", shorten(error), null)),
    failPoison: async (taskId: string, error: string) => emitIf(await store.failPoison(taskId, shorten(error))),
  };
}

/** What a person does to tasks from the monitor: cancel, stop a running one, retry by hand. */
function changesByHand(store: TaskStore, { emit }: Tell) {
  /** REVOKED, and told; or why not: its state did not allow it (refused), or there is no such task. */
  const revoked = async (taskId: string, row: Task | undefined): Promise<Revoke> => {
    if (row) {
      emit(row);
      return { kind: "revoked", task: row };
    }
    const found = await store.task(taskId);
    return found ? { kind: "refused", task: found } : { kind: "missing" };
  };
  return {
    /** A task not running yet cancelled (from CANCELLABLE_STATES): REVOKED. */
    revoke: async (taskId: string): Promise<Revoke> => revoked(taskId, await store.revoke(taskId)),

    /**
     * A running task stopped by hand: REVOKED, its open run closed REVOKED, both saying who
     * stopped it. Whatever its worker does after (store photos, retry) finds it no longer
     * STARTED and is recorded as skipped. Refused (and nothing changed) unless it is STARTED.
     */
    stop: async (taskId: string, by: string): Promise<Revoke> =>
      revoked(taskId, await store.stop(taskId, shorten(`stopped by ${by} while running`))),

    /**
     * FAILURE or REVOKED tasks sent again by hand: PENDING, a new retry budget, the old
     * attempts kept, `by` recorded; each with a new job leased to the caller for leaseMs.
     * Tasks in other states are left alone and not returned.
     */
    async rerun(taskIds: string[], by: string, leaseMs = 30_000): Promise<{ task: Task; job: OutboxJob }[]> {
      if (taskIds.length === 0) return [];
      const rerun = await store.rerun(taskIds, by, leaseMs, currentTraceparent());
      for (const { task } of rerun) emit(task);
      return rerun;
    },
  };
}

/** The outbox: jobs written with their tasks, leased to one relay, marked sent after the broker's confirm. */
function outboxSteps(store: TaskStore, { events, wanted }: Tell) {
  return {
    /** Leases up to `limit` unsent outbox rows written at least minAgeMs ago, oldest first. */
    leaseOutbox: (limit: number, leaseMs: number, minAgeMs = 0) => store.leaseOutbox(limit, leaseMs, minAgeMs),

    /** The broker confirmed these jobs: sent, and their tasks queued, in one transaction. */
    async markQueued(jobs: { id: number; taskId: string }[]): Promise<void> {
      if (jobs.length === 0) return;
      // Only news while the task waits, and sent to this process's pages only ("local"):
      // other webs hear of it from the worker's claim a moment later. Unheard, the rows are not read back.
      const heard = wanted("local");
      const tasks = await store.markSent(jobs, heard);
      if (heard)
        for (const row of tasks)
          if (row.state === TaskState.PENDING) events.emit({ type: "task", task: toTaskView(row) }, "local");
    },

    /** The broker did not take these: they stay in the outbox, free for the next try. */
    async markUnsent(ids: number[], error: string): Promise<void> {
      if (ids.length > 0) await store.markUnsent(ids, shorten(error));
    },

    /** Gives up leases without trying: any relay may publish these jobs now. */
    async releaseOutbox(ids: number[]): Promise<void> {
      if (ids.length > 0) await store.release(ids);
    },

    outboxBacklog: () => store.outboxBacklog(),
  };
}

/** Reads and housekeeping: the task row, lost tasks, old rows, workers' signs of life. */
function upkeep(store: TaskStore) {
  return {
    /** The task row as it is now (a read: no state changes). */
    task: (taskId: string) => store.task(taskId),

    /**
     * Tasks whose next run was lost: RETRY past its due time by graceMs (the retry message
     * never reached the broker), STARTED runs whose worker has been silent for graceMs, and
     * PENDING tasks no run claimed pendingAfterMs after the broker took their job (it was
     * dead-lettered while the database failed, or lost). Each is returned to one caller
     * only, to be sent to the work queue again.
     */
    async recover(
      graceMs: number,
      limit = 100,
      pendingAfterMs = graceMs * PENDING_AFTER_GRACES,
    ): Promise<{ task: Task; attempt: number }[]> {
      return (await store.recover(graceMs, limit, pendingAfterMs)).map((row) => ({
        task: row,
        attempt: row.attemptCount + 1,
      }));
    },

    /**
     * Deletes sent outbox rows and the attempts of finished tasks older than olderThanMs, a
     * batch at a time until a batch comes back short. Tasks and photos are kept: the gallery
     * and the task list are the product.
     */
    async prune(olderThanMs: number, batch = 1000): Promise<{ outbox: number; attempts: number }> {
      const total = { outbox: 0, attempts: 0 };
      for (;;) {
        const { outbox, attempts } = await store.prune(olderThanMs, batch);
        total.outbox += outbox;
        total.attempts += attempts;
        if (outbox < batch && attempts < batch) return total;
      }
    },

    /** A worker's sign of life, read by recover() on other workers. */
    workerSeen: (worker: WorkerSign) => store.workerSeen(worker),
    forgetWorkersSilentFor: (ms: number) => store.forgetWorkersSilentFor(ms),
  };
}

export type Lifecycle = ReturnType<typeof createLifecycle>;
