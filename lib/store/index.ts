// Data access, by one rule: all SQL and Prisma calls live in lib/store/; nothing outside it
// imports the Prisma client, @prisma/*, a database driver (better-sqlite3, pg) or runs a
// query. The generated model types (with `import type`) and enums may be imported anywhere.
// eslint.config.js enforces it; tests, bench and prisma.config.ts are exempt (it says why).
//
// This file: the job pipeline's writes, behind one interface with a SQLite and a PostgreSQL
// implementation; DATABASE_URL chooses. lib/lifecycle/lifecycle.ts is their only caller: it adds
// the events and the error shortening, the stores hold the SQL and the transactions.
// Beside them, the few reads every page view makes (PageReads). What pages and use cases
// read otherwise, and the audit trail they write, is in queries/.
import type { Photo, Task } from "../../generated/prisma/client.ts";
import type { TaskState } from "../../generated/prisma/enums.ts";
import { isPostgresUrl } from "../platform/config.ts";
import type { PhotoView } from "../lifecycle/shapes.ts";

export interface NewTask {
  id: string;
  breed: string;
  subBreed: string | null;
  limit: number;
}

/** A job in the outbox, as a relay publishes it. */
export interface OutboxJob {
  id: number;
  taskId: string;
  body: string;
  /** The x-attempt it is published with. */
  attempt: number;
}

/** A run a worker holds: only the latest run of a task may finish it. */
export interface OpenRun {
  taskId: string;
  attemptId: number;
  number: number;
}

export type Claim = ({ kind: "run"; task: Task } & OpenRun) | { kind: "skip"; state: TaskState } | { kind: "missing" };

export interface WorkerSign {
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
}

/**
 * The reads of the plain gallery page and the newest tasks, which every home page, live
 * stream and monitor view makes, in one prepared statement each: through Prisma's query
 * compiler they were most of a page view's CPU. Filtered and paged-by-cursor
 * reads stay on Prisma (queries/photos.ts, queries/taskSearch.ts), which use these for the plain pages.
 */
export interface PageReads {
  /** The newest tasks (by creation, then id), each with how many of its photos the gallery still holds. */
  newestTasks(take: number): Promise<(Task & { photosInGallery: number })[]>;
  /** How many photos the gallery holds (kept by triggers in the Counter table). */
  photoTotal(): Promise<number>;
  /** Photos in id order from the newest or the oldest end, skipping `skip`. */
  photos(from: "newest" | "oldest", skip: number, take: number): Promise<Photo[]>;
}

/** Each method is one transaction; those named after a transition are guarded by lib/lifecycle/transitions.ts. */
export interface TaskStore extends PageReads {
  accept(input: NewTask, body: string, leaseMs: number): Promise<{ task: Task; job: OutboxJob }>;
  claim(job: { taskId: string; attempt: number; redelivered: boolean; workerId: string }): Promise<Claim>;
  /**
   * SUCCESS with the photos stored, and the photos as stored if withPhotos (for a live page;
   * nobody else reads them back); undefined (the run recorded as SKIPPED) if a later run took over.
   */
  succeed(
    run: OpenRun,
    breed: string,
    subBreed: string | null,
    urls: string[],
    withPhotos: boolean,
  ): Promise<{ task: Task; photos?: PhotoView[] } | undefined>;
  finishRun(
    run: OpenRun,
    outcome: "FAILURE" | "RETRY",
    error: string,
    retryDelayMs: number | null,
  ): Promise<Task | undefined>;
  failPoison(taskId: string, error: string): Promise<Task | undefined>;
  revoke(taskId: string): Promise<Task | undefined>;
  /**
   * A STARTED task REVOKED with `reason` as its error, its open run closed REVOKED with it; undefined if it was not
   * STARTED.
   */
  stop(taskId: string, reason: string): Promise<Task | undefined>;
  /**
   * FAILURE or REVOKED tasks back to PENDING with a new retry budget, each with a new job in
   * the outbox (leased to the caller for leaseMs); those in other states are left alone.
   */
  rerun(taskIds: string[], by: string, leaseMs: number, trace?: string): Promise<{ task: Task; job: OutboxJob }[]>;
  task(taskId: string): Promise<Task | undefined>;
  leaseOutbox(limit: number, leaseMs: number, minAgeMs: number): Promise<OutboxJob[]>;
  /** Sent, and their tasks queued; returns the tasks whose queued time was set if withTasks (else none). */
  markSent(jobs: { id: number; taskId: string }[], withTasks: boolean): Promise<Task[]>;
  markUnsent(ids: number[], error: string): Promise<void>;
  release(ids: number[]): Promise<void>;
  outboxBacklog(): Promise<number>;
  /**
   * Overdue RETRY and lost STARTED runs after graceMs; PENDING never claimed pendingAfterMs after it was queued: leased
   * to this caller.
   */
  recover(graceMs: number, limit: number, pendingAfterMs: number): Promise<Task[]>;
  workerSeen(worker: WorkerSign): Promise<void>;
  /**
   * Deletes up to `batch` sent outbox rows, and up to `batch` attempts of tasks that finished,
   * older than olderThanMs: one bounded statement each, so no write lock is held long.
   */
  prune(olderThanMs: number, batch: number): Promise<{ outbox: number; attempts: number }>;
  /** Forgets workers not seen for ms, by the database's clock. */
  forgetWorkersSilentFor(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /**
   * SQLite: how long a write may wait for others to commit with (lib/store/sqlite/connection.ts gatherWrites); 0, the
   * next turn of the event loop.
   */
  commitWindowMs?: number;
  /** PostgreSQL: the longest a connect or a query may take (DATABASE_TIMEOUT_MS); unbounded when unset. */
  timeoutMs?: number;
}

/** Opens the store DATABASE_URL names (after it is migrated); only that driver is loaded. */
export async function openStore(url: string, options: StoreOptions = {}): Promise<TaskStore> {
  if (isPostgresUrl(url)) return (await import("./postgres/store.ts")).openPostgresStore(url, options.timeoutMs);
  return (await import("./sqlite/store.ts")).openSqliteStore(url, options.commitWindowMs);
}
