// Use cases on tasks, free of HTTP: the web's form, the JSON API and tests call these.
import { randomUUID } from "node:crypto";
import type { Task } from "../generated/prisma/client.ts";
import type { Db } from "./db.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import type { EventSink } from "./events.ts";
import type { Lifecycle, OutboxJob } from "./lifecycle.ts";
import { isUuid, type TaskInput } from "./validation.ts";
import { jobBody, toPhotoView, toTaskView, type TaskView } from "./shapes.ts";

/** Hands an accepted task to the broker; queued once the broker confirmed it within waitMs. */
export interface JobDispatcher {
  dispatch(job: OutboxJob, waitMs: number): Promise<{ queued: boolean; task?: Task }>;
}

export interface TaskDeps {
  db: Db;
  lifecycle: Lifecycle;
  events: EventSink;
  dispatcher: JobDispatcher;
  publishWaitMs: number;
}

/**
 * Writes the task and its outbox message in one transaction, so an accepted task is
 * never lost, then asks for it to be published. If the broker is away the task still
 * exists (PENDING, waiting for the queue) and is sent when the broker is back.
 */
export async function submitTask(deps: TaskDeps, input: TaskInput): Promise<{ task: TaskView; queued: boolean }> {
  const id = randomUUID();
  const fresh = { id, breed: input.breed, subBreed: input.subBreed ?? null, limit: input.limit };
  const accepted = await deps.lifecycle.accept(fresh, jobBody(fresh));
  const { queued, task } = await deps.dispatcher.dispatch(accepted.job, deps.publishWaitMs);
  return { task: toTaskView(task ?? accepted.task), queued };
}

export async function getTaskDetail(db: Db, id: string) {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const task = await db.task.findUnique({
    where: { id },
    include: {
      attempts: { orderBy: { id: "asc" } },
      photos: { orderBy: { position: "asc" }, include: { photo: true } },
    },
  });
  if (!task) throw new NotFoundError("There is no task with that id.");
  return {
    task: toTaskView(task),
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
    photos: task.photos.map((link) => toPhotoView(link.photo)),
  };
}

/** A task that has not started (PENDING or waiting to retry) can be revoked; no worker runs it after. */
export async function cancelTask(deps: Pick<TaskDeps, "lifecycle">, id: string): Promise<TaskView> {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const result = await deps.lifecycle.revoke(id);
  if (result.kind === "missing") throw new NotFoundError("There is no task with that id.");
  if (result.kind === "refused") throw new ConflictError(`Task ${id} is ${result.task.state}; only PENDING or RETRY tasks can be cancelled.`);
  return toTaskView(result.task);
}
