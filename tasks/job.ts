// What a worker does with one job. Brokers redeliver, so every step is safe to repeat:
// a finished task is skipped, a re-run replaces the task's photo links instead of
// adding to them, and an image already in the gallery is linked, not stored twice.
import type { Prisma } from "../generated/prisma/client.ts";
import type { Db } from "../lib/db.ts";
import { DogApiError, type DogApi } from "../lib/dogApi.ts";
import type { EventSink } from "../lib/events.ts";
import type { Logger } from "../lib/logger.ts";
import { toPhotoView, toTaskView } from "../lib/views.ts";
import { InvalidMessageError, parseJobMessage, type JobMessage } from "./messages.ts";
import type { Delivery, Outcome } from "./queue.ts";

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

export interface JobDeps {
  db: Db;
  dogApi: DogApi;
  events: EventSink;
  logger: Logger;
  workerId: string;
  retry: RetryPolicy;
  /** Links from anywhere else are dropped: only these origins' images are stored. */
  imageOrigins: string[];
  random?: () => number;
}

/** For heartbeats: jobs this worker finished SUCCESS; FAILURE or dead-lettered; acked without running (already finished or cancelled). */
export interface JobCounters {
  done: number;
  failed: number;
  skipped: number;
}

/** The adapter runs one transaction at a time per process: under load a run queues for its turn. */
const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 15_000 };

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
    const log = deps.logger.child({ taskId: job.taskId, attempt: delivery.attempt });
    const run: Run = {};
    try {
      return await runJob(deps, job, delivery, run, log, counters);
    } catch (err) {
      // The database itself failed, or something unforeseen: try again later through the
      // retry queue (never an immediate redelivery loop), spending the retry budget.
      const next = (run.number ?? delivery.attempt) + 1;
      if (next > deps.retry.maxAttempts + 1) {
        log.error({ err }, "job failed unexpectedly again; dead-lettering it");
        counters.failed += 1;
        return { action: "dead-letter" };
      }
      log.error({ err }, "job failed unexpectedly; scheduling a retry");
      const delayMs = backoffDelay(deps.retry, next - 1, undefined, deps.random);
      if (run.attemptId !== undefined && run.number !== undefined) {
        await scheduleRetry(deps, job.taskId, { attemptId: run.attemptId, number: run.number }, `unexpected error: ${(err as Error).message}`, delayMs).catch(() => {});
      }
      return { action: "retry", attempt: next, delayMs };
    }
  };
}

/** A run this worker has claimed: its attempt row and number. Only the latest run of a task may finish it. */
interface OpenRun {
  attemptId: number;
  number: number;
}

/** What this delivery has claimed so far, for the error path. */
type Run = Partial<OpenRun>;

async function runJob(deps: JobDeps, job: JobMessage, delivery: Delivery, run: Run, log: Logger, counters: JobCounters): Promise<Outcome> {
  const claim = await claimTask(deps, job, delivery);
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
  Object.assign(run, claim);
  const number = claim.number;
  log.info({ breed: job.breed, subBreed: job.subBreed, limit: job.limit, run: number }, "task started");

  if (number > deps.retry.maxAttempts) {
    // Only reachable when earlier runs were lost (a worker died each time): stop here.
    const reason = `gave up after ${number - 1} attempts: the worker stopped before finishing each time`;
    await finish(deps, job.taskId, claim, { state: "FAILURE", error: reason });
    counters.failed += 1;
    log.warn({ reason }, "task failed: retries used up; dead-lettering the job");
    return { action: "dead-letter" };
  }

  let links: string[];
  try {
    links = await deps.dogApi.randomImages(job.breed, job.subBreed, job.limit);
  } catch (err) {
    const error = err instanceof DogApiError ? err : new DogApiError("transient", (err as Error).message);
    if (error.kind !== "transient") {
      await finish(deps, job.taskId, claim, { state: "FAILURE", error: `dog.ceo: ${error.message}` });
      counters.failed += 1;
      log.warn({ reason: error.message }, "task failed: dog.ceo refused it");
      return { action: "ack" };
    }
    if (number >= deps.retry.maxAttempts) {
      const reason = `gave up after ${number} attempts: ${error.message}`;
      await finish(deps, job.taskId, claim, { state: "FAILURE", error: reason });
      counters.failed += 1;
      log.warn({ reason }, "task failed: retries used up; dead-lettering the job");
      return { action: "dead-letter" };
    }
    const delayMs = backoffDelay(deps.retry, number, error.retryAfterMs, deps.random);
    await scheduleRetry(deps, job.taskId, claim, error.message, delayMs);
    log.warn({ reason: error.message, delayMs }, "transient failure; retry scheduled");
    return { action: "retry", attempt: number + 1, delayMs };
  }

  const kept = keepTrustedLinks(links, deps.imageOrigins, log);
  const stored = await storePhotos(deps, job, claim, kept);
  if (stored === undefined) {
    counters.skipped += 1;
    log.info("a later run of this task took over; leaving the result to it");
  } else {
    counters.done += 1;
    log.info({ photos: stored.length }, "task succeeded");
  }
  return { action: "ack" };
}

type Claim =
  | ({ kind: "run" } & OpenRun)
  | { kind: "skip"; state: string }
  | { kind: "missing" };

/**
 * Marks the task STARTED and opens an attempt, unless this delivery has nothing to do.
 * A job message runs its task when it is the next attempt the task is waiting for
 * (its x-attempt is past the attempts recorded), or when the broker redelivers the
 * job of a run whose worker died. A duplicate of a job that is running, finished or
 * cancelled is skipped, so two workers never run one task at once by accident.
 */
async function claimTask(deps: JobDeps, job: JobMessage, delivery: Delivery): Promise<Claim> {
  const now = new Date();
  const claim = await deps.db.$transaction(async (tx): Promise<Claim> => {
    // A write first: SQLite then takes the write lock at once, so the busy timeout applies.
    const { count } = await tx.task.updateMany({
      where: {
        id: job.taskId,
        OR: [
          { state: { in: ["PENDING", "RETRY", "STARTED"] }, attempts: { lt: delivery.attempt } },
          ...(delivery.redelivered ? [{ state: "STARTED" }] : []),
        ],
      },
      data: { state: "STARTED", attempts: { increment: 1 }, retryAt: null },
    });
    const task = await tx.task.findUnique({ where: { id: job.taskId } });
    if (!task) return { kind: "missing" };
    if (count === 0) return { kind: "skip", state: task.state };
    if (!task.startedAt) await tx.task.update({ where: { id: job.taskId }, data: { startedAt: now } });
    // A run still open here belonged to a worker that died mid-job.
    await tx.attempt.updateMany({
      where: { taskId: job.taskId, outcome: null },
      data: { outcome: "LOST", finishedAt: now, error: "the worker stopped before finishing; the job was delivered again" },
    });
    const attempt = await tx.attempt.create({ data: { taskId: job.taskId, number: task.attempts, workerId: deps.workerId, startedAt: now } });
    return { kind: "run", attemptId: attempt.id, number: task.attempts };
  }, TRANSACTION_OPTIONS);
  if (claim.kind === "run") await emitTask(deps, job.taskId);
  return claim;
}

/** Stores the photos and finishes the task SUCCESS in one transaction; undefined if another run already finished it. */
async function storePhotos(deps: JobDeps, job: JobMessage, { attemptId, number }: OpenRun, urls: string[]) {
  const now = new Date();
  const photos = await deps.db.$transaction(async (tx) => {
    const { count } = await tx.task.updateMany({
      where: { id: job.taskId, state: "STARTED", attempts: number },
      data: { state: "SUCCESS", photoCount: urls.length, finishedAt: now, error: null },
    });
    if (count === 0) {
      await closeAttempt(tx, attemptId, { outcome: "SKIPPED", finishedAt: now, error: "a later run of this task took over" });
      return undefined;
    }
    await tx.taskPhoto.deleteMany({ where: { taskId: job.taskId } });
    const stored = [];
    for (const [position, url] of urls.entries()) {
      const photo = await tx.photo.upsert({
        where: { url },
        create: { url, breed: job.breed, subBreed: job.subBreed ?? null },
        update: {},
      });
      await tx.taskPhoto.create({ data: { taskId: job.taskId, photoId: photo.id, position } });
      stored.push(photo);
    }
    await closeAttempt(tx, attemptId, { outcome: "SUCCESS", finishedAt: now });
    return stored;
  }, TRANSACTION_OPTIONS);
  if (photos === undefined) return undefined;
  if (photos.length > 0) deps.events.emit({ type: "photos", taskId: job.taskId, photos: photos.map(toPhotoView) });
  await emitTask(deps, job.taskId);
  return photos;
}

async function finish(deps: JobDeps, taskId: string, { attemptId, number }: OpenRun, result: { state: "FAILURE"; error: string }) {
  const now = new Date();
  await deps.db.$transaction(async (tx) => {
    await tx.task.updateMany({ where: { id: taskId, state: "STARTED", attempts: number }, data: { state: result.state, error: result.error, finishedAt: now } });
    await closeAttempt(tx, attemptId, { outcome: "FAILURE", error: result.error, finishedAt: now });
  }, TRANSACTION_OPTIONS);
  await emitTask(deps, taskId);
}

async function scheduleRetry(deps: JobDeps, taskId: string, { attemptId, number }: OpenRun, error: string, delayMs: number) {
  const now = new Date();
  await deps.db.$transaction(async (tx) => {
    await tx.task.updateMany({
      where: { id: taskId, state: "STARTED", attempts: number },
      data: { state: "RETRY", error, retryAt: new Date(now.getTime() + delayMs) },
    });
    await closeAttempt(tx, attemptId, { outcome: "RETRY", error, finishedAt: now, retryDelayMs: Math.round(delayMs) });
  }, TRANSACTION_OPTIONS);
  await emitTask(deps, taskId);
}

/** Closes this run's own attempt row (even one marked LOST by a takeover: the run did finish). */
async function closeAttempt(
  tx: Prisma.TransactionClient,
  attemptId: number,
  data: { outcome: string; finishedAt: Date; error?: string; retryDelayMs?: number },
) {
  await tx.attempt.update({ where: { id: attemptId }, data });
}

/** A poison message that still names a task fails that task, so nobody waits on it forever. */
async function failTaskOfPoisonMessage(deps: JobDeps, content: Buffer, reason: string) {
  const match = /"taskId"\s*:\s*"([0-9a-f-]{36})"/.exec(content.toString());
  if (!match) return;
  const { count } = await deps.db.task.updateMany({
    where: { id: match[1], state: { in: ["PENDING", "STARTED", "RETRY"] } },
    data: { state: "FAILURE", error: reason, finishedAt: new Date() },
  });
  if (count > 0) await emitTask(deps, match[1]!);
}

async function emitTask(deps: JobDeps, taskId: string) {
  const task = await deps.db.task.findUnique({ where: { id: taskId } });
  if (task) deps.events.emit({ type: "task", task: toTaskView(task) });
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.round(Math.min(policy.maxMs, Math.max(jittered, retryAfterMs ?? 0)));
}

/** Keeps links that point at a trusted image origin (https, or the configured stand-in), once each. */
export function keepTrustedLinks(links: string[], origins: string[], log: Logger): string[] {
  const kept = new Set<string>();
  for (const link of links) {
    let url: URL | undefined;
    try {
      url = new URL(link);
    } catch {
      url = undefined;
    }
    // Origins are compared with their scheme, so http://images.dog.ceo is not trusted.
    const trusted = url && origins.includes(url.origin) && !url.username && !url.password;
    if (trusted) kept.add(url!.href);
    else log.warn({ link: link.slice(0, 200) }, "dropped a link that is not on a trusted image host");
  }
  return [...kept];
}
