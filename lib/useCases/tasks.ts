// Use cases on tasks, free of HTTP: the web's form, the JSON API and tests call these.
import { randomUUID } from "node:crypto";
import type { Task } from "../../generated/prisma/client.ts";
import { recordAction } from "./audit.ts";
import type { Queries, TaskQueries } from "../store/queries/index.ts";
import { isDatabaseUnavailable } from "../store/databaseErrors.ts";
import { ConflictError, DatabaseUnavailableError, NotFoundError } from "../platform/errors.ts";
import type { EventSink } from "../live/events.ts";
import type { Lifecycle, OutboxJob } from "../lifecycle/lifecycle.ts";
import { currentTraceparent, traceIdOf } from "../platform/tracing.ts";
import { isUuid, type TaskInput } from "../lifecycle/validation.ts";
import type { WorkerRegistry } from "../monitor/workerRegistry.ts";
import { jobBody, toPhotoView, toTaskView, type TaskView } from "../lifecycle/shapes.ts";

const NOT_SAVED = "The database is not answering right now, so the task may not have been saved. Try again in 5 s.";

/** Hands an accepted task to the broker; queued once the broker confirmed it within waitMs, at queuedAt. */
export interface JobDispatcher {
  dispatch(job: OutboxJob, waitMs: number): Promise<{ queued: boolean; queuedAt?: Date }>;
}

/** The task as a caller is told of it: queued at the confirm, which the task row records a moment later. */
export const asDispatched = (task: Task, queuedAt: Date | undefined): Task =>
  queuedAt && !task.queuedAt ? { ...task, queuedAt } : task;

export interface TaskDeps {
  data: Queries;
  lifecycle: Lifecycle;
  events: EventSink;
  dispatcher: JobDispatcher;
  publishWaitMs: number;
}

/**
 * Writes the task and its outbox message in one transaction, so an accepted task is
 * never lost, then asks for it to be published. If the broker is away the task still
 * exists (PENDING, waiting for the queue) and is sent when the broker is back. If the
 * database is away, or silent past its time limit (the store's), nothing is accepted and
 * the caller is told to try again (DatabaseUnavailableError).
 */
export async function submitTask(deps: TaskDeps, input: TaskInput): Promise<{ task: TaskView; queued: boolean }> {
  const id = randomUUID();
  const fresh = { id, breed: input.breed, subBreed: input.subBreed ?? null, limit: input.limit };
  const accepted = await deps.lifecycle.accept(fresh, jobBody(fresh, currentTraceparent())).catch((err: unknown) => {
    throw isDatabaseUnavailable(err) ? Object.assign(new DatabaseUnavailableError(5, NOT_SAVED), { cause: err }) : err;
  });
  const { queued, queuedAt } = await deps.dispatcher.dispatch(accepted.job, deps.publishWaitMs);
  return { task: toTaskView(asDispatched(accepted.task, queuedAt)), queued };
}

/**
 * A task with its attempts, photos, the job message it was last published with, and (while
 * it runs, given the workers' registry) which worker holds it and whether that one is alive.
 */
export async function getTaskDetail(tasks: TaskQueries, id: string, workers?: Pick<WorkerRegistry, "list">) {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const task = await tasks.withHistory(id);
  if (!task) throw new NotFoundError("There is no task with that id.");
  const running = task.state === "STARTED" ? task.attempts.findLast((run) => run.outcome === null) : undefined;
  const holder = running && workers?.list().find((w) => w.id === running.workerId);
  const message = task.lastJob;
  const body = message?.body ?? jobBody(task);
  return {
    task: toTaskView(task),
    /** The job as published (or waiting in the outbox); rebuilt from the task once retention deleted the row. */
    job: {
      body,
      /** The OpenTelemetry trace it was sent in, when tracing was on. */
      traceId: traceIdOf(parsedTrace(body)),
      attempt: message?.attempt ?? 1,
      sentAt: message?.sentAt?.toISOString() ?? null,
      publishTries: message?.tries ?? null,
      lastPublishError: message?.lastError ?? null,
    },
    heldBy: running
      ? {
          workerId: running.workerId,
          since: running.startedAt.toISOString(),
          status: holder?.status ?? "unknown",
          paused: holder?.paused ?? false,
        }
      : null,
    attempts: task.attempts.map((run) => ({
      number: run.number,
      workerId: run.workerId,
      startedAt: run.startedAt.toISOString(),
      finishedAt: run.finishedAt?.toISOString() ?? null,
      outcome: run.outcome ?? "RUNNING",
      error: run.error,
      retryDelayMs: run.retryDelayMs,
      durationMs: run.finishedAt ? run.finishedAt.getTime() - run.startedAt.getTime() : null,
    })),
    photos: task.photos.map(toPhotoView),
  };
}

/**
 * A task that has not started (PENDING or waiting to retry) can be revoked; no worker runs it after. `by` goes in the
 * audit trail.
 */
export async function cancelTask(
  deps: Pick<TaskDeps, "lifecycle" | "data">,
  id: string,
  by = "someone",
): Promise<TaskView> {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const result = await deps.lifecycle.revoke(id);
  if (result.kind === "missing") throw new NotFoundError("There is no task with that id.");
  if (result.kind === "refused")
    throw new ConflictError(`Task ${id} is ${result.task.state}; only PENDING or RETRY tasks can be cancelled.`);
  await recordAction(deps.data.audit, { by, action: "cancel", target: id });
  return toTaskView(result.task);
}

/** Why a stop found nothing to stop, by the state the task is in. */
const NOT_RUNNING: Partial<Record<Task["state"], string>> = {
  PENDING: "it has not started: cancel it instead",
  RETRY: "it is waiting to try again: cancel it instead",
  SUCCESS: "it finished before the stop arrived",
  FAILURE: "it failed before the stop arrived",
  REVOKED: "it was cancelled or stopped already",
};

/**
 * Stops a running (STARTED) task, Flower's revoke with terminate: the task and its run end
 * REVOKED, "stopped by <by> while running", and `tellWorkers` asks the worker that holds it
 * to abandon its dog.ceo call (false when it could not: that worker's result is then dropped
 * when it comes, as the task is no longer STARTED). A task in any other state is left alone.
 */
export async function stopTask(
  deps: Pick<TaskDeps, "lifecycle" | "data">,
  id: string,
  by: string,
  tellWorkers: (taskId: string) => boolean,
): Promise<{ task: TaskView; workerTold: boolean }> {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const result = await deps.lifecycle.stop(id, by);
  if (result.kind === "missing") throw new NotFoundError("There is no task with that id.");
  if (result.kind === "refused")
    throw new ConflictError(
      `Not stopped: task ${id} is ${result.task.state}; ${NOT_RUNNING[result.task.state] ?? "it is not running"}.`,
    );
  const workerTold = tellWorkers(id);
  const detail = workerTold
    ? "its worker was told to abandon the dog.ceo call"
    : "no control key: its worker's result is dropped when it comes";
  await recordAction(deps.data.audit, { by, action: "stop", target: id, detail });
  return { task: toTaskView(result.task), workerTold };
}

/** The traceparent a job message carries, if any. */
function parsedTrace(body: string): unknown {
  try {
    return (JSON.parse(body) as { trace?: unknown }).trace;
  } catch {
    return undefined;
  }
}
