// Use cases on tasks, free of HTTP: the web's form, the JSON API and tests call these.
import { randomUUID } from "node:crypto";
import type { Task } from "../generated/prisma/client.ts";
import type { Db } from "./db.ts";
import { ConflictError, NotFoundError, ValidationError } from "./errors.ts";
import type { EventSink } from "./events.ts";
import type { Lifecycle, OutboxJob } from "./lifecycle.ts";
import { isUuid, type TaskInput } from "./validation.ts";
import { TASK_STATES, toPhotoView, toTaskView, type TaskState, type TaskView } from "./shapes.ts";

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
  const job = { taskId: id, breed: input.breed, ...(input.subBreed ? { subBreed: input.subBreed } : {}), limit: input.limit };
  const accepted = await deps.lifecycle.accept({ id, breed: input.breed, subBreed: input.subBreed ?? null, limit: input.limit }, JSON.stringify(job));
  const { queued, task } = await deps.dispatcher.dispatch(accepted.job, deps.publishWaitMs);
  return { task: toTaskView(task ?? accepted.task), queued };
}

export interface TaskFilter {
  state?: string;
  breed?: string;
  id?: string;
  cursor?: string;
  limit?: number;
}

/** A task in a list, with how many of its photos the gallery still holds ("Clear photos" empties it; the task keeps its count). */
export type ListedTask = TaskView & { photosInGallery: number };

export async function listTasks(db: Db, filter: TaskFilter = {}): Promise<{ tasks: ListedTask[]; nextCursor: string | null }> {
  const take = filter.limit ?? 20;
  if (!Number.isInteger(take) || take < 1 || take > 100) throw new ValidationError({ limit: "The page size must be a whole number from 1 to 100." });
  if (filter.state && !TASK_STATES.includes(filter.state as TaskState)) {
    throw new ValidationError({ state: `The state must be one of ${TASK_STATES.join(", ")}.` });
  }
  const idPrefix = filter.id?.trim().toLowerCase();
  // Only what an id can hold: LIKE would read % and _ as wildcards and match every task.
  if (idPrefix && !/^[0-9a-f-]{1,36}$/.test(idPrefix)) throw new ValidationError({ id: "An id prefix holds only hex digits and dashes, like 3f2a or 3f2a9c1e-." });
  if (filter.cursor !== undefined && !isUuid(filter.cursor)) throw new ValidationError({ cursor: "The cursor is not one this API gave out." });
  const breed = filter.breed?.trim().toLowerCase();
  const [main, sub] = breed ? breed.split("/") : [];
  // Keyset paging from the cursor task's place in the order, wherever that task is now:
  // a task that changed state since the last page cannot make the next one skip a row.
  const after = filter.cursor ? await db.task.findUnique({ where: { id: filter.cursor }, select: { id: true, createdAt: true } }) : undefined;
  if (filter.cursor && !after) throw new ValidationError({ cursor: "The cursor is not one this API gave out." });
  const rows = await db.task.findMany({
    where: {
      ...(filter.state ? { state: filter.state as TaskState } : {}),
      ...(main ? { breed: main } : {}),
      ...(sub ? { subBreed: sub } : {}),
      ...(idPrefix ? { id: { startsWith: idPrefix } } : {}),
      ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: take + 1,
    include: { _count: { select: { photos: true } } },
  });
  const page = rows.slice(0, take);
  const tasks = page.map(({ _count, ...task }) => ({ ...toTaskView(task), photosInGallery: _count.photos }));
  return { tasks, nextCursor: rows.length > take ? page[page.length - 1]!.id : null };
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

/** How many tasks are in each state, for the metrics and the monitor's totals. */
export async function countTasksByState(db: Db): Promise<Partial<Record<TaskState, number>>> {
  const groups = await db.task.groupBy({ by: ["state"], _count: { _all: true } });
  return Object.fromEntries(groups.map((g) => [g.state, g._count._all]));
}

/** A task that has not started (PENDING or waiting to retry) can be revoked; no worker runs it after. */
export async function cancelTask(deps: Pick<TaskDeps, "lifecycle">, id: string): Promise<TaskView> {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const result = await deps.lifecycle.revoke(id);
  if (result.kind === "missing") throw new NotFoundError("There is no task with that id.");
  if (result.kind === "refused") throw new ConflictError(`Task ${id} is ${result.task.state}; only PENDING or RETRY tasks can be cancelled.`);
  return toTaskView(result.task);
}
