// What a worker does with one job. Brokers redeliver, so every step is safe to repeat:
// the claim skips a finished or running task, a re-run replaces the task's photo links
// instead of adding to them, and an image already in the gallery is linked, not stored
// twice. The message only names the task (anyone who can publish to the queue can write
// one): breed, sub-breed, limit, the run's number and the retry budget come from the task
// row, which is the truth. Every state change goes through lib/lifecycle/lifecycle.ts.
import { isDatabaseUnavailable } from "../lib/store/databaseErrors.ts";
import { DogApiError, type DogApi } from "../lib/dogs/dogApi.ts";
import type { Lifecycle, OpenRun } from "../lib/lifecycle/lifecycle.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { inSpan, SpanKind } from "../lib/platform/tracing.ts";
import { noMetrics, type AttemptOutcome, type WorkMetrics } from "../lib/platform/metrics.ts";
import { InvalidMessageError, parseJobMessage, type JobMessage } from "./messages.ts";
import { DATABASE_WAIT_MAX_MS, patientLifecycle } from "./patience.ts";
import type { Delivery, Outcome } from "./queue.ts";

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

export interface JobDeps {
  lifecycle: Lifecycle;
  dogApi: DogApi;
  logger: Logger;
  workerId: string;
  retry: RetryPolicy;
  /** Links from anywhere else are dropped: only these origins' images are stored. */
  imageOrigins: string[];
  random?: () => number;
  metrics?: WorkMetrics;
}

/** For heartbeats: jobs this worker finished SUCCESS; FAILURE or dead-lettered; acked without running (already finished or cancelled). */
export interface JobCounters {
  done: number;
  failed: number;
  skipped: number;
}

/** Longer links are not stored: dog.ceo's are under 100 characters. */
export const MAX_LINK_LENGTH = 2048;

export function createJobHandler(deps: JobDeps, counters: JobCounters = { done: 0, failed: 0, skipped: 0 }) {
  /** The runs in hand, by task: a stop aborts its dog.ceo call. */
  const running = new Map<string, AbortController>();
  /** Abandons this worker's run of the task (stopped by hand; the task is REVOKED already); true if it held one. */
  const stop = (taskId: string): boolean => {
    const run = running.get(taskId);
    run?.abort(new Error("stopped by hand"));
    return run !== undefined;
  };

  async function handleJob(delivery: Delivery): Promise<Outcome> {
    let job: JobMessage;
    try {
      job = parseJobMessage(delivery.content);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      // Its task is left alone: anyone can write a message naming it. A task whose real job was
      // malformed is still PENDING, and the recovery sweep sends it again from its row.
      deps.logger.error({ reason: err.message, body: delivery.content.toString().slice(0, 200) }, "dead-lettering a malformed job message");
      counters.failed += 1;
      return { action: "dead-letter" };
    }
    const attributes = () => ({ "gendog.task_id": job.taskId, "gendog.attempt": delivery.attempt });
    return inSpan("run task", { kind: SpanKind.CONSUMER, traceparent: () => job.trace, attributes }, () => runJob(job, delivery));
  }

  /**
   * Runs whose end could not be written (the database failed as they ended). Their task stays
   * STARTED under a live worker, which no message may take over, so this worker writes the
   * end once the database answers: before its next job and at each recovery sweep.
   */
  const unwritten: { run: OpenRun; outcome: "RETRY" | "FAILURE"; error: string; dueAt: number }[] = [];

  let writing: Promise<void> | undefined;
  /** One writer at a time: a run's end written twice would be recorded as skipped the second time. */
  const writeLeftovers = (): Promise<void> =>
    unwritten.length === 0
      ? Promise.resolve()
      : (writing ??= (async () => {
          while (unwritten.length > 0) {
            const { run, outcome, error, dueAt } = unwritten[0]!;
            if (outcome === "RETRY") await deps.lifecycle.retry(run, error, Math.max(0, dueAt - Date.now()));
            else await deps.lifecycle.fail(run, error);
            unwritten.shift();
          }
        })().finally(() => (writing = undefined)));

  async function runJob(job: JobMessage, delivery: Delivery): Promise<Outcome> {
    const log = deps.logger.child({ taskId: job.taskId, attempt: delivery.attempt });
    let run: (OpenRun & { task: { attemptBase: number } }) | undefined;
    try {
      await writeLeftovers().catch((err: unknown) => log.warn({ err, runs: unwritten.length }, "could not yet write how earlier runs ended"));
      const lifecycle = patientLifecycle(deps.lifecycle, log);
      const claim = await lifecycle.claim({ taskId: job.taskId, attempt: delivery.attempt, redelivered: delivery.redelivered, workerId: deps.workerId });
      if (claim.kind === "missing") {
        log.error("dead-lettering a job whose task does not exist");
        counters.failed += 1;
        return { action: "dead-letter" };
      }
      if (claim.kind === "skip") {
        counters.skipped += 1;
        log.info({ state: claim.state }, "job already done, cancelled, running elsewhere or not due yet; acknowledging it without running");
        return { action: "ack" };
      }
      run = claim;
      const metrics = deps.metrics ?? noMetrics;
      if (claim.number === 1 && claim.task.startedAt) metrics.queueWait((claim.task.startedAt.getTime() - (claim.task.queuedAt ?? claim.task.createdAt).getTime()) / 1000);
      const began = performance.now();
      const controller = new AbortController();
      running.set(job.taskId, controller);
      try {
        const { outcome, attempt } = await runTask({ ...deps, lifecycle }, claim, log, counters, { signal: controller.signal, rerun: job.rerun === true });
        metrics.attemptFinished(attempt, (performance.now() - began) / 1000);
        return outcome;
      } finally {
        if (running.get(job.taskId) === controller) running.delete(job.taskId);
      }
    } catch (err) {
      // The database itself failed, or something unforeseen: try again later through the
      // retry queue (never an immediate redelivery loop), spending the retry budget.
      const reason = `unexpected error: ${(err as Error).message}`;
      if (isDatabaseUnavailable(err)) return databaseAway(run, delivery, err as Error, log);
      if (!run) return unclaimed(job, delivery, reason, err, log);
      const used = runsUsed(run);
      if (budgetSpent(deps.retry, used)) {
        log.error({ err }, "job failed unexpectedly on its last allowed run; dead-lettering it");
        counters.failed += 1;
        await endRun(run, "FAILURE", `gave up after ${used} attempts: ${reason}`, 0);
        return { action: "dead-letter" };
      }
      log.error({ err }, "job failed unexpectedly; scheduling a retry");
      const delayMs = backoffDelay(deps.retry, used, undefined, deps.random);
      await endRun(run, "RETRY", reason, delayMs);
      return { action: "retry", attempt: run.number + 1, delayMs };
    }
  }

  /** Writes how a run ended, or keeps it for writeLeftovers if the database fails. */
  async function endRun(run: OpenRun, outcome: "RETRY" | "FAILURE", error: string, delayMs: number): Promise<void> {
    try {
      await (outcome === "RETRY" ? deps.lifecycle.retry(run, error, delayMs) : deps.lifecycle.fail(run, error));
    } catch {
      unwritten.push({ run, outcome, error, dueAt: Date.now() + delayMs });
    }
  }

  /**
   * The database was away longer than the job waited in hand (tasks/patience.ts): not the
   * job's fault, so it goes back through a retry queue (at most DATABASE_WAIT_MAX_MS) however
   * long that takes, never dead-lettered for it. A run's end is written once the database answers.
   */
  async function databaseAway(run: OpenRun | undefined, delivery: Delivery, err: Error, log: Logger): Promise<Outcome> {
    const delayMs = Math.min(DATABASE_WAIT_MAX_MS, backoffDelay(deps.retry, run ? run.number : delivery.attempt, undefined, deps.random));
    log.warn({ reason: err.message, delayMs }, "database unavailable; the job waits and tries again");
    if (!run) return { action: "retry", attempt: delivery.attempt + 1, delayMs };
    await endRun(run, "RETRY", `database unavailable: ${err.message}`, delayMs);
    return { action: "retry", attempt: run.number + 1, delayMs };
  }

  /**
   * The claim itself failed, so no run began and the row could not be read: the message's
   * x-attempt (from its firstAttempt) is all that counts these tries, with the same budget
   * as runs. Only here does the message's number count, so a forged one can end the tries
   * (and fail its task) early only while the database refuses the claim.
   */
  async function unclaimed(job: JobMessage, delivery: Delivery, reason: string, err: unknown, log: Logger): Promise<Outcome> {
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

  return Object.assign(handleJob, { writeLeftovers, stop });
}

/** Runs of this budget so far, this one included: a task retried by hand starts a new budget. */
const runsUsed = (run: { number: number; task: { attemptBase: number } }) => run.number - run.task.attemptBase;

/** The one rule for the retry budget: after `used` runs (or tries), is another one allowed? */
export const budgetSpent = (policy: RetryPolicy, used: number) => used >= policy.maxAttempts;

/** What to do with the message, and how the attempt ended. */
type RunResult = { outcome: Outcome; attempt: AttemptOutcome };

async function runTask(
  deps: JobDeps,
  claim: Extract<Awaited<ReturnType<Lifecycle["claim"]>>, { kind: "run" }>,
  log: Logger,
  counters: JobCounters,
  call: { signal?: AbortSignal; rerun?: boolean } = {},
): Promise<RunResult> {
  const { signal } = call;
  const { task, number } = claim;
  log.info({ breed: task.breed, subBreed: task.subBreed, limit: task.limit, run: number }, "task started");
  const used = runsUsed(claim);

  if (budgetSpent(deps.retry, used - 1)) {
    // Every earlier run of the budget ended without writing how (a worker died each time,
    // or the database failed as it ended): this run is one too many, so stop here.
    const reason = `gave up after ${used - 1} attempts: the worker stopped before finishing each time`;
    await deps.lifecycle.fail(claim, reason);
    counters.failed += 1;
    log.warn({ reason }, "task failed: retries used up; dead-lettering the job");
    return { outcome: { action: "dead-letter" }, attempt: "FAILURE" };
  }

  let links: string[];
  const metrics = deps.metrics ?? noMetrics;
  const asked = performance.now();
  try {
    links = await inSpan("dog.ceo random images", { kind: SpanKind.CLIENT, attributes: () => ({ "gendog.breed": task.breed, "gendog.limit": task.limit }) }, () =>
      deps.dogApi.randomImages(task.breed, task.subBreed ?? undefined, task.limit, call),
    );
    metrics.dogApiCall((performance.now() - asked) / 1000);
  } catch (err) {
    const error = err instanceof DogApiError ? err : new DogApiError("transient", (err as Error).message);
    if (error.kind === "stopped") {
      // The web recorded the task REVOKED (and this run with it) before telling us.
      counters.skipped += 1;
      log.info("task stopped by hand while running; its dog.ceo call abandoned");
      return { outcome: { action: "ack" }, attempt: "REVOKED" };
    }
    metrics.dogApiCall((performance.now() - asked) / 1000, error);
    if (error.kind !== "transient") {
      await deps.lifecycle.fail(claim, `dog.ceo: ${error.message}`);
      counters.failed += 1;
      log.warn({ reason: error.message.slice(0, 500) }, "task failed: dog.ceo refused it");
      return { outcome: { action: "ack" }, attempt: "FAILURE" };
    }
    if (budgetSpent(deps.retry, used)) {
      await deps.lifecycle.fail(claim, `gave up after ${used} attempts: ${error.message}`);
      counters.failed += 1;
      log.warn({ reason: error.message.slice(0, 500) }, "task failed: retries used up; dead-lettering the job");
      return { outcome: { action: "dead-letter" }, attempt: "FAILURE" };
    }
    const delayMs = backoffDelay(deps.retry, used, error.retryAfterMs, deps.random);
    await deps.lifecycle.retry(claim, error.message, delayMs);
    log.warn({ reason: error.message.slice(0, 500), delayMs }, "transient failure; retry scheduled");
    return { outcome: { action: "retry", attempt: number + 1, delayMs }, attempt: "RETRY" };
  }

  // dog.ceo's answer never decides how much is stored: at most the task's limit.
  const kept = keepTrustedLinks(links, deps.imageOrigins, log, task.limit);
  if (kept.length === 0 && links.length > 0) {
    // Not a task that found no photos: every photo was refused here. Asking again would get
    // links on the same host, so it fails at once, saying which host and what would help.
    const reason = `none of the ${links.length} photo link${links.length === 1 ? "" : "s"} dog.ceo sent is on an allowed image host (the first is on ${hostOf(links[0]!)}). An operator can add that host to IMAGE_ORIGINS, then retry this task.`;
    await deps.lifecycle.fail(claim, reason);
    counters.failed += 1;
    log.warn({ reason }, "task failed: every photo link was on a host that is not allowed");
    return { outcome: { action: "ack" }, attempt: "FAILURE" };
  }
  const stored = await deps.lifecycle.succeed({ ...claim, breed: task.breed, subBreed: task.subBreed }, kept);
  if (stored === undefined) {
    counters.skipped += 1;
    if (signal?.aborted) {
      log.info("task stopped by hand while running; its photos are not stored");
      return { outcome: { action: "ack" }, attempt: "REVOKED" };
    }
    log.info("a later run of this task took over (or it was stopped); leaving the result to it");
    return { outcome: { action: "ack" }, attempt: "SKIPPED" };
  }
  counters.done += 1;
  log.info({ photos: stored.task.photoCount }, "task succeeded");
  return { outcome: { action: "ack" }, attempt: "SUCCESS" };
}

/** Where a link points, for a message: its origin, or that it is no address at all. */
function hostOf(link: string): string {
  if (!URL.canParse(link)) return "no valid address";
  const url = new URL(link);
  return (url.origin === "null" ? `a ${url.protocol} address` : url.origin).slice(0, 100);
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.round(Math.min(policy.maxMs, Math.max(jittered, retryAfterMs ?? 0)));
}

/**
 * Keeps up to `max` links that point at a trusted image origin (https, or the configured
 * stand-in), once each, and no longer than MAX_LINK_LENGTH. It stops reading once it has
 * enough, so a reply with thousands of links costs no more than one with `max`.
 */
export function keepTrustedLinks(links: string[], origins: string[], log: Logger, max = Infinity): string[] {
  const kept = new Set<string>();
  let dropped = 0;
  let example: string | undefined;
  let read = 0;
  for (const link of links) {
    if (kept.size >= max) break;
    read += 1;
    const url = link.length <= MAX_LINK_LENGTH && URL.canParse(link) ? new URL(link) : undefined;
    // Origins are compared with their scheme, so http://images.dog.ceo is not trusted.
    if (url && origins.includes(url.origin) && !url.username && !url.password && url.href.length <= MAX_LINK_LENGTH) {
      kept.add(url.href);
    } else {
      dropped += 1;
      example ??= link.slice(0, 200);
    }
  }
  if (dropped > 0) log.warn({ dropped, example }, "dropped links that are not on a trusted image host");
  if (read < links.length) log.warn({ received: links.length, kept: kept.size }, "dog.ceo sent more links than asked for; kept the task's limit");
  return [...kept];
}
