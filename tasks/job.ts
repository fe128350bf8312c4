// What a worker does with one job: parse the message, claim the task, run it (tasks/run.ts),
// and when something unforeseen fails, retry it through a retry queue or give up. Brokers
// redeliver, so every step is safe to repeat: the claim skips a finished or running task, a
// re-run replaces the task's photo links instead of adding to them, and an image already in
// the gallery is linked, not stored twice. Of the message only the task's id is trusted
// (anyone who can publish to the queue can write one): breed, limit and the retry budget come
// from the task row, which is the truth. When the database fails during a job,
// tasks/patience.ts decides what happens.
import { isDatabaseUnavailable } from "../lib/store/databaseErrors.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { inSpan, SpanKind } from "../lib/platform/tracing.ts";
import { noMetrics, type AttemptOutcome } from "../lib/platform/metrics.ts";
import { InvalidMessageError, parseJobMessage, type JobMessage } from "./messages.ts";
import { createPatience, DATABASE_WAIT_MAX_MS, type Patience } from "./patience.ts";
import type { Delivery, Outcome } from "./queue.ts";
import { backoffDelay, budgetSpent, runsUsed } from "./retryPolicy.ts";
import { runTask, type ClaimedRun, type RunDeps } from "./run.ts";

export interface JobDeps extends RunDeps {
  logger: Logger;
  workerId: string;
  /** How long a job waits in hand for the database before it goes back through the broker (default PATIENCE_MS). */
  patienceMs?: number;
}

/**
 * For heartbeats: jobs this worker finished SUCCESS; FAILURE or dead-lettered; acked without running (already finished
 * or cancelled).
 */
export interface JobCounters {
  done: number;
  failed: number;
  skipped: number;
}

/** What every job of this worker shares. */
interface Handler {
  deps: JobDeps;
  counters: JobCounters;
  patience: Patience;
  /** The runs in hand, by task: a stop aborts its dog.ceo call. */
  running: Map<string, AbortController>;
}

/** How a job failed unexpectedly: the error, and the run it had claimed, if any. */
type Failure = { job: JobMessage; delivery: Delivery; run?: ClaimedRun; err: unknown; log: Logger };

/** Which counter a run's end adds to (a RETRY adds to none: the job is not done yet). */
const COUNTED: Partial<Record<AttemptOutcome, keyof JobCounters>> = {
  SUCCESS: "done",
  FAILURE: "failed",
  REVOKED: "skipped",
  SKIPPED: "skipped",
};

export function createJobHandler(deps: JobDeps, counters: JobCounters = { done: 0, failed: 0, skipped: 0 }) {
  const handler: Handler = {
    deps,
    counters,
    patience: createPatience(deps.lifecycle, deps.patienceMs),
    running: new Map(),
  };
  /** Abandons this worker's run of the task (stopped by hand; the task is REVOKED already); true if it held one. */
  const stop = (taskId: string): boolean => {
    const run = handler.running.get(taskId);
    run?.abort(new Error("stopped by hand"));
    return run !== undefined;
  };
  const handleJob = (delivery: Delivery) => handle(handler, delivery);
  return Object.assign(handleJob, { writeOwedRunEnds: handler.patience.writeOwed, stop });
}

async function handle(handler: Handler, delivery: Delivery): Promise<Outcome> {
  let job: JobMessage;
  try {
    job = parseJobMessage(delivery.content);
  } catch (err) {
    if (!(err instanceof InvalidMessageError)) throw err;
    // Its task is left alone: anyone can write a message naming it. A task whose real job was
    // malformed is still PENDING, and the recovery sweep sends it again from its row.
    const body = delivery.content.toString().slice(0, 200);
    handler.deps.logger.error({ reason: err.message, body }, "dead-lettering a malformed job message");
    handler.counters.failed += 1;
    return { action: "dead-letter" };
  }
  const attributes = () => ({ "gendog.task_id": job.taskId, "gendog.attempt": delivery.attempt });
  return inSpan("run task", { kind: SpanKind.CONSUMER, traceparent: () => job.trace, attributes }, () =>
    claimAndRun(handler, job, delivery),
  );
}

async function claimAndRun(handler: Handler, job: JobMessage, delivery: Delivery): Promise<Outcome> {
  const { deps, counters, patience } = handler;
  const log = deps.logger.child({ taskId: job.taskId, attempt: delivery.attempt });
  let run: ClaimedRun | undefined;
  try {
    await patience
      .writeOwed()
      .catch((err: unknown) => log.warn({ err, runs: patience.owed() }, "could not yet write how earlier runs ended"));
    const lifecycle = patience.steps(log);
    const claim = await lifecycle.claim({
      taskId: job.taskId,
      attempt: delivery.attempt,
      redelivered: delivery.redelivered,
      workerId: deps.workerId,
    });
    if (claim.kind === "missing") {
      log.error("dead-lettering a job whose task does not exist");
      counters.failed += 1;
      return { action: "dead-letter" };
    }
    if (claim.kind === "skip") {
      counters.skipped += 1;
      log.info(
        { state: claim.state },
        "job already done, cancelled, running elsewhere or not due yet; acknowledging it without running",
      );
      return { action: "ack" };
    }
    run = claim;
    return await runClaimed(handler, job, claim, { ...deps, lifecycle }, log);
  } catch (err) {
    return failed(handler, { job, delivery, run, err, log });
  }
}

/** Runs a claimed task where a stop can reach it, and counts how it ended. */
async function runClaimed(
  handler: Handler,
  job: JobMessage,
  claim: ClaimedRun,
  deps: RunDeps,
  log: Logger,
): Promise<Outcome> {
  const metrics = deps.metrics ?? noMetrics;
  const { task } = claim;
  if (claim.number === 1 && task.startedAt)
    metrics.queueWait((task.startedAt.getTime() - (task.queuedAt ?? task.createdAt).getTime()) / 1000);
  const began = performance.now();
  const controller = new AbortController();
  handler.running.set(job.taskId, controller);
  try {
    const { outcome, attempt } = await runTask(deps, claim, log, {
      signal: controller.signal,
      rerun: job.rerun === true,
    });
    const counter = COUNTED[attempt];
    if (counter) handler.counters[counter] += 1;
    metrics.attemptFinished(attempt, (performance.now() - began) / 1000);
    return outcome;
  } finally {
    if (handler.running.get(job.taskId) === controller) handler.running.delete(job.taskId);
  }
}

/**
 * The database itself failed, or something unforeseen: try again later through the retry
 * queue (never an immediate redelivery loop), spending the retry budget unless the database
 * was away.
 */
async function failed(handler: Handler, failure: Failure): Promise<Outcome> {
  const { deps, counters, patience } = handler;
  const { run, err, log } = failure;
  if (isDatabaseUnavailable(err)) return databaseAway(handler, failure);
  if (!run) return unclaimed(handler, failure);
  const reason = `unexpected error: ${(err as Error).message}`;
  const used = runsUsed(run);
  if (budgetSpent(deps.retry, used)) {
    log.error({ err }, "job failed unexpectedly on its last allowed run; dead-lettering it");
    counters.failed += 1;
    await patience.endRun(run, "FAILURE", `gave up after ${used} attempts: ${reason}`, 0);
    return { action: "dead-letter" };
  }
  log.error({ err }, "job failed unexpectedly; scheduling a retry");
  const delayMs = backoffDelay(deps.retry, used, undefined, deps.random);
  await patience.endRun(run, "RETRY", reason, delayMs);
  return { action: "retry", attempt: run.number + 1, delayMs };
}

/**
 * The database was away longer than the job waited in hand (tasks/patience.ts): not the
 * job's fault, so it goes back through a retry queue (at most DATABASE_WAIT_MAX_MS) however
 * long that takes, never dead-lettered for it. A run's end is written once the database answers.
 */
async function databaseAway({ deps, patience }: Handler, { run, delivery, err, log }: Failure): Promise<Outcome> {
  const message = (err as Error).message;
  const delayMs = Math.min(
    DATABASE_WAIT_MAX_MS,
    backoffDelay(deps.retry, run ? run.number : delivery.attempt, undefined, deps.random),
  );
  log.warn({ reason: message, delayMs }, "database unavailable; the job waits and tries again");
  if (!run) return { action: "retry", attempt: delivery.attempt + 1, delayMs };
  await patience.endRun(run, "RETRY", `database unavailable: ${message}`, delayMs);
  return { action: "retry", attempt: run.number + 1, delayMs };
}

/**
 * The claim itself failed, so no run began and the row could not be read: the message's
 * x-attempt (from its firstAttempt) is all that counts these tries, with the same budget
 * as runs. Only here does the message's number count, so a forged one can end the tries
 * (and fail its task) early only while the database refuses the claim.
 */
async function unclaimed({ deps, counters }: Handler, { job, delivery, err, log }: Failure): Promise<Outcome> {
  const reason = `unexpected error: ${(err as Error).message}`;
  const tried = Math.max(1, delivery.attempt - ((job.firstAttempt ?? 1) - 1));
  if (budgetSpent(deps.retry, tried)) {
    log.error({ err }, "job failed unexpectedly again; dead-lettering it");
    counters.failed += 1;
    // The task must not wait for a job that is gone. If the database still fails, the
    // recovery sweep sends it again later (a PENDING task no run claimed).
    await deps.lifecycle.failPoison(job.taskId, `gave up after ${tried} attempts: ${reason}`).catch(() => {});
    return { action: "dead-letter" };
  }
  log.error({ err }, "job failed unexpectedly before it could start; scheduling a retry");
  const delayMs = backoffDelay(deps.retry, tried, undefined, deps.random);
  return { action: "retry", attempt: delivery.attempt + 1, delayMs };
}
