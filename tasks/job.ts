// What a worker does with one job. Brokers redeliver, so every step is safe to repeat:
// the claim skips a finished or running task, a re-run replaces the task's photo links
// instead of adding to them, and an image already in the gallery is linked, not stored
// twice. The message only names the task: breed, sub-breed and limit come from the task
// row, which is the truth. Every state change goes through lib/lifecycle.ts.
import { DogApiError, type DogApi } from "../lib/dogApi.ts";
import type { Lifecycle, OpenRun } from "../lib/lifecycle.ts";
import type { Logger } from "../lib/logger.ts";
import { inSpan, SpanKind } from "../lib/tracing.ts";
import { noMetrics, type AttemptOutcome, type WorkMetrics } from "../lib/metrics.ts";
import { InvalidMessageError, parseJobMessage, type JobMessage } from "./messages.ts";
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
  return async function handleJob(delivery: Delivery): Promise<Outcome> {
    let job: JobMessage;
    try {
      job = parseJobMessage(delivery.content);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      deps.logger.error({ reason: err.message, body: delivery.content.toString().slice(0, 200) }, "dead-lettering a malformed job message");
      await failTaskOfPoisonMessage(deps, delivery.content, `invalid job message: ${err.message}`);
      counters.failed += 1;
      return { action: "dead-letter" };
    }
    const attributes = () => ({ "gendog.task_id": job.taskId, "gendog.attempt": delivery.attempt });
    return inSpan("run task", { kind: SpanKind.CONSUMER, traceparent: () => job.trace, attributes }, () => runJob(job, delivery));
  };

  async function runJob(job: JobMessage, delivery: Delivery): Promise<Outcome> {
    const log = deps.logger.child({ taskId: job.taskId, attempt: delivery.attempt });
    let run: (OpenRun & { task: { attemptBase: number } }) | undefined;
    try {
      const claim = await deps.lifecycle.claim({ taskId: job.taskId, attempt: delivery.attempt, redelivered: delivery.redelivered, workerId: deps.workerId });
      if (claim.kind === "missing") {
        log.error("dead-lettering a job whose task does not exist");
        counters.failed += 1;
        return { action: "dead-letter" };
      }
      if (claim.kind === "skip") {
        counters.skipped += 1;
        log.info({ state: claim.state }, "job already done, cancelled or running elsewhere; acknowledging it without running");
        return { action: "ack" };
      }
      run = claim;
      const metrics = deps.metrics ?? noMetrics;
      if (claim.number === 1 && claim.task.startedAt) metrics.queueWait((claim.task.startedAt.getTime() - (claim.task.queuedAt ?? claim.task.createdAt).getTime()) / 1000);
      const began = performance.now();
      const { outcome, attempt } = await runTask(deps, claim, log, counters);
      metrics.attemptFinished(attempt, (performance.now() - began) / 1000);
      return outcome;
    } catch (err) {
      // The database itself failed, or something unforeseen: try again later through the
      // retry queue (never an immediate redelivery loop), spending the retry budget.
      const next = (run?.number ?? delivery.attempt) + 1;
      // The budget counts from the last retry by hand: the task row says where, or else the message.
      const base = run ? run.task.attemptBase : (job.firstAttempt ?? 1) - 1;
      if (next - base > deps.retry.maxAttempts + 1) {
        log.error({ err }, "job failed unexpectedly again; dead-lettering it");
        counters.failed += 1;
        // The task must not wait for a job that is gone. If the database still fails, the
        // recovery sweep sends it again later (a PENDING task no run claimed).
        const reason = `gave up after ${next - 1 - base} attempts: unexpected error: ${(err as Error).message}`;
        await (run ? deps.lifecycle.fail(run, reason) : deps.lifecycle.failPoison(job.taskId, reason)).catch(() => {});
        return { action: "dead-letter" };
      }
      log.error({ err }, "job failed unexpectedly; scheduling a retry");
      const delayMs = backoffDelay(deps.retry, next - 1 - base, undefined, deps.random);
      if (run) await deps.lifecycle.retry(run, `unexpected error: ${(err as Error).message}`, delayMs).catch(() => {});
      return { action: "retry", attempt: next, delayMs };
    }
  }
}

/** What to do with the message, and how the attempt ended. */
type RunResult = { outcome: Outcome; attempt: AttemptOutcome };

async function runTask(deps: JobDeps, claim: Extract<Awaited<ReturnType<Lifecycle["claim"]>>, { kind: "run" }>, log: Logger, counters: JobCounters): Promise<RunResult> {
  const { task, number } = claim;
  log.info({ breed: task.breed, subBreed: task.subBreed, limit: task.limit, run: number }, "task started");
  // Runs of this budget: a task retried by hand starts a new one.
  const used = number - task.attemptBase;

  if (used > deps.retry.maxAttempts) {
    // Only reachable when earlier runs were lost (a worker died each time): stop here.
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
      deps.dogApi.randomImages(task.breed, task.subBreed ?? undefined, task.limit),
    );
    metrics.dogApiCall((performance.now() - asked) / 1000);
  } catch (err) {
    const error = err instanceof DogApiError ? err : new DogApiError("transient", (err as Error).message);
    metrics.dogApiCall((performance.now() - asked) / 1000, error);
    if (error.kind !== "transient") {
      await deps.lifecycle.fail(claim, `dog.ceo: ${error.message}`);
      counters.failed += 1;
      log.warn({ reason: error.message.slice(0, 500) }, "task failed: dog.ceo refused it");
      return { outcome: { action: "ack" }, attempt: "FAILURE" };
    }
    if (used >= deps.retry.maxAttempts) {
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
    log.info("a later run of this task took over; leaving the result to it");
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

/** A poison message that still names a task fails that task, so nobody waits on it forever. */
async function failTaskOfPoisonMessage(deps: JobDeps, content: Buffer, reason: string) {
  const match = /"taskId"\s*:\s*"([0-9a-f-]{36})"/.exec(content.subarray(0, 4096).toString());
  if (match) await deps.lifecycle.failPoison(match[1]!, reason);
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
