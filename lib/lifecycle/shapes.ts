// The shapes tasks and photos take outside the database: in pages, the JSON API and events.
import type { Task } from "../../generated/prisma/client.ts";
import { TaskState } from "../../generated/prisma/enums.ts";
import { breedLabel } from "../dogs/breeds.ts";
import { TRANSITIONS } from "./transitions.ts";

export { TaskState };
export const TASK_STATES = Object.values(TaskState);
/** What a person may cancel: the revoke transition's from-states. */
export const CANCELLABLE_STATES: readonly TaskState[] = TRANSITIONS.revoke.from;
/** What a person may send again, a task that ended without its photos: the rerun transition's from-states. */
export const RETRIABLE_STATES: readonly TaskState[] = TRANSITIONS.rerun.from;

/**
 * The job message for a task (tasks/messages.ts reads it). firstAttempt: where a retry by
 * hand's budget starts; trace: the W3C traceparent of the request that sent it (lib/platform/tracing.ts).
 */
export function jobBody(
  task: Pick<Task, "id" | "breed" | "subBreed" | "limit"> & { attemptBase?: number; retriedAt?: Date | null },
  trace?: string,
): string {
  const firstAttempt = (task.attemptBase ?? 0) + 1;
  return JSON.stringify({
    taskId: task.id,
    breed: task.breed,
    ...(task.subBreed ? { subBreed: task.subBreed } : {}),
    limit: task.limit,
    ...(firstAttempt > 1 ? { firstAttempt } : {}),
    // Sent again by hand: it travels in the reruns' lane (tasks/broker/lanes.ts), behind people's submits.
    ...(task.retriedAt ? { rerun: true } : {}),
    ...(trace ? { trace } : {}),
  });
}

export interface TaskView {
  id: string;
  breed: string;
  subBreed: string | null;
  label: string;
  limit: number;
  state: TaskState;
  error: string | null;
  photoCount: number;
  /** How many times a worker has taken it up (the attempts themselves are in the task detail). */
  attemptCount: number;
  createdAt: string;
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  retryAt: string | null;
  /** Orders versions of a task: live pages ignore an event older than what they show. */
  updatedAt: string;
  /** Still in the outbox: accepted, but the broker has not confirmed it yet. */
  waitingForQueue: boolean;
  cancellable: boolean;
  /** FAILURE or REVOKED: it can be sent again with a new retry budget. */
  retriable: boolean;
  /** The last time it was sent again by hand, and who did it (the admin user name or the client's address). */
  retriedAt: string | null;
  retriedBy: string | null;
  /** From acceptance (or the last retry by hand) until a worker first started it. */
  waitMs: number | null;
  /** From the first start until it finished. */
  runtimeMs: number | null;
}

export function toTaskView(task: Task): TaskView {
  const state = task.state;
  return {
    id: task.id,
    breed: task.breed,
    subBreed: task.subBreed,
    label: breedLabel(task.breed, task.subBreed),
    limit: task.limit,
    state,
    error: task.error,
    photoCount: task.photoCount,
    attemptCount: task.attemptCount,
    createdAt: task.createdAt.toISOString(),
    queuedAt: iso(task.queuedAt),
    startedAt: iso(task.startedAt),
    finishedAt: iso(task.finishedAt),
    retryAt: iso(task.retryAt),
    updatedAt: task.updatedAt.toISOString(),
    waitingForQueue: state === "PENDING" && task.queuedAt === null,
    cancellable: CANCELLABLE_STATES.includes(state),
    retriable: RETRIABLE_STATES.includes(state),
    retriedAt: iso(task.retriedAt),
    retriedBy: task.retriedBy,
    waitMs: task.startedAt ? task.startedAt.getTime() - (task.retriedAt ?? task.createdAt).getTime() : null,
    runtimeMs: task.startedAt && task.finishedAt ? task.finishedAt.getTime() - task.startedAt.getTime() : null,
  };
}

export interface PhotoView {
  id: number;
  url: string;
  breed: string;
  subBreed: string | null;
  label: string;
  createdAt: string;
}

export function toPhotoView(photo: {
  id: number;
  url: string;
  breed: string;
  subBreed: string | null;
  createdAt: Date;
}): PhotoView {
  return {
    id: photo.id,
    url: photo.url,
    breed: photo.breed,
    subBreed: photo.subBreed,
    label: breedLabel(photo.breed, photo.subBreed),
    createdAt: photo.createdAt.toISOString(),
  };
}

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}
