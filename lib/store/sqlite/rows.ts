// Rows read with the SQLite driver, turned into the shapes Prisma gives the rest of the app.
import type { Photo, Task } from "../../../generated/prisma/client.ts";
import type { TaskState } from "../../../generated/prisma/enums.ts";

/** The times better-sqlite3 reads as text. */
type TimeField = "createdAt" | "queuedAt" | "startedAt" | "finishedAt" | "retryAt" | "retriedAt" | "updatedAt";

/** A task as better-sqlite3 reads it: Prisma's Task, with its times as text and its state as a plain string. */
export type TaskRow = Omit<Task, TimeField | "state"> & { state: string } & {
  [K in TimeField]: null extends Task[K] ? string | null : string;
};

/** Prisma writes "2026-11-22T15:45:51.123+00:00"; a DEFAULT CURRENT_TIMESTAMP is "2026-11-22 15:45:51" in UTC. */
export function timeFromRow(value: string): Date {
  return new Date(/^\d{4}-\d\d-\d\d \d/.test(value) ? `${value.replace(" ", "T")}Z` : value);
}

const optionalTime = (value: string | null) => (value === null ? null : timeFromRow(value));

export function taskFromRow(row: TaskRow): Task {
  return {
    ...row,
    state: row.state as TaskState,
    createdAt: timeFromRow(row.createdAt),
    queuedAt: optionalTime(row.queuedAt),
    startedAt: optionalTime(row.startedAt),
    finishedAt: optionalTime(row.finishedAt),
    retryAt: optionalTime(row.retryAt),
    retriedAt: optionalTime(row.retriedAt),
    updatedAt: timeFromRow(row.updatedAt),
  };
}

export type PhotoRow = Omit<Photo, "createdAt"> & { createdAt: string };

export const photoFromRow = (row: PhotoRow): Photo => ({ ...row, createdAt: timeFromRow(row.createdAt) });
