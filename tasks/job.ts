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
    try {
      return await runJob(deps, job, delivery, log, counters);
    } catch (err) {
      // The database itself failed (or something unforeseen): try again later via the
      // retry queue rather than spinning on an immediate redelivery.
      log.error({ err }, "job failed unexpectedly; scheduling a retry");
      return { action: "retry", attempt: delivery.attempt, delayMs: deps.retry.baseMs };
    }
  };
}

async function runJob(deps: JobDeps, job: JobMessage, delivery: Delivery, log: Logger, counters: JobCounters): Promise<Outcome> {
  const { db } = deps;
  const started = await claimTask(deps, job, delivery.attempt);
  if (started === "missing") {
    log.error("dead-lettering a job whose task does not exist");
    return { action: "dead-letter" };
  }
  if (started === "finished") {
    counters.skipped += 1;
    log.info("task already finished or cancelled; acknowledging the job without running it");
    return { action: "ack" };
  }
  log.info({ breed: job.breed, subBreed: job.subBreed, limit: job.limit }, "task started");

  let links: string[];
  try {
    links = await deps.dogApi.randomImages(job.breed, job.subBreed, job.limit);
  } catch (err) {
    const error = err instanceof DogApiError ? err : new DogApiError("transient", (err as Error).message);
    if (error.kind !== "transient") {
      await finish(deps, job.taskId, delivery.attempt, { state: "FAILURE", error: `dog.ceo: ${error.message}` });
      counters.failed += 1;
      log.warn({ reason: error.message }, "task failed: dog.ceo refused it");
      return { action: "ack" };
    }
    if (delivery.attempt >= deps.retry.maxAttempts) {
      const reason = `gave up after ${delivery.attempt} attempts: ${error.message}`;
      await finish(deps, job.taskId, delivery.attempt, { state: "FAILURE", error: reason });
      counters.failed += 1;
      log.warn({ reason }, "task failed: retries used up; dead-lettering the job");
      return { action: "dead-letter" };
    }
    const delayMs = backoffDelay(deps.retry, delivery.attempt, error.retryAfterMs, deps.random);
    await scheduleRetry(deps, job.taskId, delivery.attempt, error.message, delayMs);
    log.warn({ reason: error.message, delayMs }, "transient failure; retry scheduled");
    return { action: "retry", attempt: delivery.attempt + 1, delayMs };
  }

  const kept = keepTrustedLinks(links, deps.imageOrigins, log);
  const photos = await storePhotos(deps, job, delivery.attempt, kept);
  counters.done += 1;
  log.info({ photos: photos.length }, "task succeeded");
  return { action: "ack" };
}

/** Marks the task STARTED and records the attempt; reports if there is nothing to run. */
async function claimTask(deps: JobDeps, job: JobMessage, attempt: number): Promise<"started" | "finished" | "missing"> {
  const now = new Date();
  const claimed = await deps.db.$transaction(async (tx) => {
    // A write first: SQLite then takes the write lock at once, so the busy timeout applies.
    const { count } = await tx.task.updateMany({
      where: { id: job.taskId, state: { in: ["PENDING", "RETRY", "STARTED"] } },
      data: { state: "STARTED", attempts: attempt, retryAt: null },
    });
    if (count === 0) return (await tx.task.count({ where: { id: job.taskId } })) ? "finished" : "missing";
    await tx.task.updateMany({ where: { id: job.taskId, startedAt: null }, data: { startedAt: now } });
    // A run still open here belonged to a worker that died mid-job.
    await tx.attempt.updateMany({
      where: { taskId: job.taskId, outcome: null },
      data: { outcome: "LOST", finishedAt: now, error: "the worker stopped before finishing; the broker redelivered the job" },
    });
    await tx.attempt.create({ data: { taskId: job.taskId, number: attempt, workerId: deps.workerId, startedAt: now } });
    return "started";
  });
  if (claimed === "started") await emitTask(deps, job.taskId);
  return claimed;
}

async function storePhotos(deps: JobDeps, job: JobMessage, attempt: number, urls: string[]) {
  const now = new Date();
  const photos = await deps.db.$transaction(async (tx) => {
    const { count } = await tx.task.updateMany({
      where: { id: job.taskId, state: "STARTED" },
      data: { state: "SUCCESS", photoCount: urls.length, finishedAt: now, error: null },
    });
    if (count === 0) return [];
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
    await closeAttempt(tx, job.taskId, attempt, { outcome: "SUCCESS", finishedAt: now });
    return stored;
  });
  if (photos.length > 0) deps.events.emit({ type: "photos", taskId: job.taskId, photos: photos.map(toPhotoView) });
  await emitTask(deps, job.taskId);
  return photos;
}

async function finish(deps: JobDeps, taskId: string, attempt: number, result: { state: "FAILURE"; error: string }) {
  const now = new Date();
  await deps.db.$transaction(async (tx) => {
    await tx.task.updateMany({ where: { id: taskId, state: "STARTED" }, data: { state: result.state, error: result.error, finishedAt: now } });
    await closeAttempt(tx, taskId, attempt, { outcome: "FAILURE", error: result.error, finishedAt: now });
  });
  await emitTask(deps, taskId);
}

async function scheduleRetry(deps: JobDeps, taskId: string, attempt: number, error: string, delayMs: number) {
  const now = new Date();
  await deps.db.$transaction(async (tx) => {
    await tx.task.updateMany({
      where: { id: taskId, state: "STARTED" },
      data: { state: "RETRY", error, retryAt: new Date(now.getTime() + delayMs) },
    });
    await closeAttempt(tx, taskId, attempt, { outcome: "RETRY", error, finishedAt: now, retryDelayMs: Math.round(delayMs) });
  });
  await emitTask(deps, taskId);
}

type Tx = Prisma.TransactionClient;

async function closeAttempt(
  tx: Tx,
  taskId: string,
  number: number,
  data: { outcome: string; finishedAt: Date; error?: string; retryDelayMs?: number },
) {
  await tx.attempt.updateMany({ where: { taskId, number, outcome: null }, data });
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
