// The pipeline's transactions that run the same way on both databases, written once: which
// statements run in what order, and what a missing row means. The dialects hold the
// statements, as steps (sqlite/steps.ts, postgres/steps.ts); the writes that truly differ
// (accept, claim, succeed and markSent, which PostgreSQL gathers into one statement for many
// callers) stay in each store.
//
// A flow is a generator, and each step is `yield*`ed. A SQLite step answers at once, so a
// flow runs start to end inside one synchronous better-sqlite3 transaction (runNow); a
// PostgreSQL step yields a promise of its rows, which runAwaiting awaits on the
// transaction's connection. One control flow, two ways of waiting.
import type { Task } from "../../generated/prisma/client.ts";
import { jobBody } from "../lifecycle/shapes.ts";
import type { OpenRun, OutboxJob } from "./index.ts";

/** A statement, or a few, in one dialect: what it returns once it has run. */
export type Step<T> = Generator<unknown, T, unknown>;

export interface Steps {
  /** The run's task to RETRY (due after retryDelayMs) or FAILURE, if that run is still its latest. */
  endTask(
    run: OpenRun,
    outcome: "FAILURE" | "RETRY",
    error: string,
    retryDelayMs: number | null,
  ): Step<Task | undefined>;
  closeAttempt(attemptId: number, outcome: string, error: string | null, retryDelayMs: number | null): Step<void>;
  /** A run whose task moved on without it closes as SKIPPED (one stopped by hand stays REVOKED). */
  skipAttempt(attemptId: number): Step<void>;
  stopTask(taskId: string, error: string): Step<Task | undefined>;
  stopOpenAttempts(taskId: string, error: string): Step<void>;
  /** FAILURE or REVOKED tasks back to PENDING with a new budget of attempts. */
  rerunTasks(taskIds: string[], by: string): Step<Task[]>;
  queueJobs(jobs: { taskId: string; body: string; attempt: number }[], leaseMs: number): Step<OutboxJob[]>;
  overdueRetries(graceMs: number, limit: number): Step<Task[]>;
  /** The tasks whose latest run belongs to a worker gone silent, that run marked LOST. */
  lostRuns(graceMs: number, limit: number): Step<Task[]>;
  stalePending(pendingAfterMs: number, limit: number): Step<Task[]>;
}

export function* finishRun(
  steps: Steps,
  run: OpenRun,
  outcome: "FAILURE" | "RETRY",
  error: string,
  retryDelayMs: number | null,
): Step<Task | undefined> {
  const task = yield* steps.endTask(run, outcome, error, retryDelayMs);
  if (!task) {
    yield* steps.skipAttempt(run.attemptId);
    return undefined;
  }
  yield* steps.closeAttempt(run.attemptId, outcome, error, retryDelayMs);
  return task;
}

/** A running (or waiting) task ends REVOKED, and its open run says why. */
export function* stop(steps: Steps, taskId: string, error: string): Step<Task | undefined> {
  const task = yield* steps.stopTask(taskId, error);
  if (task) yield* steps.stopOpenAttempts(taskId, error);
  return task;
}

/** A new retry budget from here, and a job for each task in the outbox; the old attempts stay. */
export function* rerun(
  steps: Steps,
  taskIds: string[],
  by: string,
  leaseMs: number,
  trace?: string,
): Step<{ task: Task; job: OutboxJob }[]> {
  const tasks = yield* steps.rerunTasks(taskIds, by);
  if (tasks.length === 0) return [];
  const jobs = yield* steps.queueJobs(
    tasks.map((task) => ({ taskId: task.id, body: jobBody(task, trace), attempt: task.attemptCount + 1 })),
    leaseMs,
  );
  const byTask = new Map(jobs.map((job) => [job.taskId, job]));
  return tasks.map((task) => ({ task, job: byTask.get(task.id)! }));
}

/** The recovery sweep: retries overdue, runs lost with their worker, PENDING tasks whose job never came. */
export function* recover(steps: Steps, graceMs: number, limit: number, pendingAfterMs: number): Step<Task[]> {
  const overdue = yield* steps.overdueRetries(graceMs, limit);
  const lost = yield* steps.lostRuns(graceMs, limit);
  const pending = yield* steps.stalePending(pendingAfterMs, limit);
  return [...overdue, ...lost, ...pending];
}

/** Runs a flow whose steps all answer at once (SQLite's), inside the caller's transaction. */
export function runNow<T>(flow: Step<T>): T {
  const result = flow.next();
  if (!result.done) throw new Error("a step waited inside a synchronous transaction");
  return result.value;
}

/** Runs a flow whose steps yield promises (PostgreSQL's), awaiting each in turn. */
export async function runAwaiting<T>(flow: Step<T>): Promise<T> {
  let result = flow.next();
  while (!result.done) result = flow.next(await result.value);
  return result.value;
}

/** A step whose answer is already here: how a SQLite statement's result becomes a step. */
// eslint-disable-next-line require-yield -- it never waits: that is the point
export function* answered<T>(value: T): Step<T> {
  return value;
}
