// The lifecycle's statements in SQLite's dialect: every write the job pipeline makes, in
// one place. Guards come from TRANSITIONS, so the table and the SQL cannot disagree.
// lib/store/postgres/store.ts holds the same statements in PostgreSQL's dialect; lines marked
// "dialect:" say where the two differ most.
import { TaskState } from "../../../generated/prisma/enums.ts";
import type { Sql } from "./connection.ts";
import { FINISHED_STATES, TRANSITIONS, type Transition } from "../../lifecycle/transitions.ts";

const { PENDING, STARTED, SUCCESS, FAILURE, RETRY, REVOKED } = TaskState;
const inList = (states: readonly TaskState[]) => states.map((s) => `'${s}'`).join(", ");
const guard = (name: Transition) => `state IN (${inList(TRANSITIONS[name].from)})`;

// The broker may deliver a job before its confirm is back: queued is never after started.
// dialect: json_each(list) is = ANY($1) there, two-argument MIN is LEAST.
const queued = `UPDATE Task SET queuedAt = MIN(@now, COALESCE(startedAt, @now)), updatedAt = @now
  WHERE id IN (SELECT value FROM json_each(@taskIds)) AND queuedAt IS NULL`;

export function prepareStatements(sql: Sql) {
  return {
    task: taskStatements(sql),
    attempt: attemptStatements(sql),
    photo: photoStatements(sql),
    outbox: outboxStatements(sql),
    recover: recoveryStatements(sql),
    retention: retentionStatements(sql),
    pages: pageStatements(sql),
  };
}

/** A task's state changes, each guarded by its transition's from-states. */
function taskStatements(sql: Sql) {
  return {
    insert:
      sql.prepare(`INSERT INTO Task (id, breed, subBreed, "limit", state, photoCount, attemptCount, createdAt, updatedAt)
      VALUES (?, ?, ?, ?, '${PENDING}', 0, 0, ?, ?) RETURNING *`),
    get: sql.prepare("SELECT * FROM Task WHERE id = ?"),
    // The row decides, since anyone who can publish can copy a job with any x-attempt. A job
    // older than the task's last run is stale. A RETRY task runs once its wait is over. A
    // STARTED task is taken over only by the broker's redelivery of a job no worker settled
    // (no publisher can set that flag), with no later run begun since, or once a recovery
    // sweep marked its run LOST: a forged copy never cuts a healthy run short.
    claim: sql.prepare(`UPDATE Task SET state = '${STARTED}', attemptCount = attemptCount + 1, retryAt = NULL,
        startedAt = COALESCE(startedAt, @now), updatedAt = @now,
        -- A job is in the queue before a worker takes it, whenever the relay hears the confirm.
        queuedAt = CASE WHEN queuedAt > @now THEN @now ELSE queuedAt END
      WHERE id = @taskId AND ${guard("claim")} AND CASE state
        WHEN '${PENDING}' THEN attemptCount < @attempt
        WHEN '${RETRY}' THEN attemptCount < @attempt AND (retryAt IS NULL OR retryAt <= @now)
        ELSE (@redelivered = 1 AND attemptCount <= @attempt) OR (attemptCount < @attempt AND EXISTS (
          SELECT 1 FROM Attempt a WHERE a.taskId = Task.id AND a.number = Task.attemptCount AND a.outcome = 'LOST'))
      END RETURNING *`),
    succeed:
      sql.prepare(`UPDATE Task SET state = '${SUCCESS}', photoCount = @photoCount, finishedAt = @now, error = NULL, updatedAt = @now
      WHERE id = @taskId AND ${guard("succeed")} AND attemptCount = @number RETURNING *`),
    fail: sql.prepare(`UPDATE Task SET state = '${FAILURE}', error = @error, finishedAt = @now, updatedAt = @now
      WHERE id = @taskId AND ${guard("fail")} AND attemptCount = @number RETURNING *`),
    retry: sql.prepare(`UPDATE Task SET state = '${RETRY}', error = @error, retryAt = @retryAt, updatedAt = @now
      WHERE id = @taskId AND ${guard("retry")} AND attemptCount = @number RETURNING *`),
    failPoison:
      sql.prepare(`UPDATE Task SET state = '${FAILURE}', error = @error, finishedAt = @now, retryAt = NULL, updatedAt = @now
      WHERE id = @taskId AND ${guard("failPoison")} RETURNING *`),
    // A new retry budget from here; the old attempts stay. The times restart with the new run.
    rerun:
      sql.prepare(`UPDATE Task SET state = '${PENDING}', attemptBase = attemptCount, error = NULL, queuedAt = NULL, startedAt = NULL, finishedAt = NULL,
        retryAt = NULL, retriedAt = @now, retriedBy = @by, updatedAt = @now
      WHERE id IN (SELECT value FROM json_each(@ids)) AND ${guard("rerun")} RETURNING *`),
    revoke:
      sql.prepare(`UPDATE Task SET state = '${REVOKED}', finishedAt = @now, retryAt = NULL, error = CASE WHEN attemptCount > 0 THEN 'cancelled while it waited to try again' ELSE 'cancelled before it ran' END, updatedAt = @now
      WHERE id = @taskId AND ${guard("revoke")} RETURNING *`),
    stop: sql.prepare(`UPDATE Task SET state = '${REVOKED}', finishedAt = @now, retryAt = NULL, error = @error, updatedAt = @now
      WHERE id = @taskId AND ${guard("stop")} RETURNING *`),
  };
}

/** A task's runs (Attempt rows): opened by a claim, closed with the run's outcome. */
function attemptStatements(sql: Sql) {
  return {
    loseOpen: sql.prepare(`UPDATE Attempt SET outcome = 'LOST', finishedAt = @now,
        error = 'the worker stopped before finishing; the job was delivered again' WHERE taskId = @taskId AND outcome IS NULL`),
    open: sql.prepare("INSERT INTO Attempt (taskId, number, workerId, startedAt) VALUES (?, ?, ?, ?) RETURNING id"),
    close: sql.prepare(
      "UPDATE Attempt SET outcome = @outcome, finishedAt = @now, error = @error, retryDelayMs = @retryDelayMs WHERE id = @attemptId",
    ),
    // A run whose task was stopped says so, not that a later run took over.
    skip: sql.prepare(`UPDATE Attempt SET outcome = 'SKIPPED', finishedAt = @now, error = 'a later run of this task took over'
      WHERE id = @attemptId AND (outcome IS NULL OR outcome <> '${REVOKED}')`),
    stopOpen: sql.prepare(
      `UPDATE Attempt SET outcome = '${REVOKED}', finishedAt = @now, error = @error WHERE taskId = @taskId AND outcome IS NULL`,
    ),
  };
}

/** A task's photos: stored once each by url, linked to the task in order. */
function photoStatements(sql: Sql) {
  return {
    unlinkAll: sql.prepare("DELETE FROM TaskPhoto WHERE taskId = ?"),
    // All of a task's photos in two statements. A known url is not stored twice (DO NOTHING),
    // it is linked. dialect: json_each(@urls) is unnest($1::text[]) WITH ORDINALITY there.
    store: sql.prepare(`INSERT INTO Photo (url, breed, subBreed, createdAt)
      SELECT value, @breed, @subBreed, @now FROM json_each(@urls) WHERE true ON CONFLICT(url) DO NOTHING`),
    link: sql.prepare(`INSERT INTO TaskPhoto (taskId, photoId, position)
      SELECT @taskId, p.id, j.key FROM json_each(@urls) j JOIN Photo p ON p.url = j.value WHERE true ON CONFLICT DO NOTHING`),
    ofTask:
      sql.prepare(`SELECT p.id, p.url, p.breed, p.subBreed, p.createdAt FROM TaskPhoto tp JOIN Photo p ON p.id = tp.photoId
      WHERE tp.taskId = ? ORDER BY tp.position`),
  };
}

/** The outbox: jobs written with their tasks, leased to one relay, marked sent. */
function outboxStatements(sql: Sql) {
  return {
    // Leased from the start by the process that wrote it, which publishes it straight away.
    insert: sql.prepare(
      "INSERT INTO OutboxMessage (taskId, body, createdAt, tries, leaseUntil, attempt) VALUES (?, ?, ?, 0, ?, ?) RETURNING id, taskId, body, attempt",
    ),
    // Taken before publishing, so two relays never publish one row (a crash can still repeat it).
    // dialect: PostgreSQL needs FOR UPDATE SKIP LOCKED in the subquery; SQLite has one writer.
    lease: sql.prepare(`UPDATE OutboxMessage SET leaseUntil = @until WHERE id IN (
        SELECT id FROM OutboxMessage WHERE sentAt IS NULL AND (leaseUntil IS NULL OR leaseUntil < @now) AND createdAt <= @bornBefore
        ORDER BY id LIMIT @limit) RETURNING id, taskId, body, attempt`),
    sent: sql.prepare(
      "UPDATE OutboxMessage SET sentAt = @now, tries = tries + 1, leaseUntil = NULL WHERE id IN (SELECT value FROM json_each(@ids))",
    ),
    queued: sql.prepare(queued),
    // The same, reading the rows back for a page that listens.
    queuedTasks: sql.prepare(`${queued} RETURNING *`),
    unsent: sql.prepare(
      "UPDATE OutboxMessage SET tries = tries + 1, lastError = @error, leaseUntil = NULL WHERE id IN (SELECT value FROM json_each(@ids))",
    ),
    release: sql.prepare(
      "UPDATE OutboxMessage SET leaseUntil = NULL WHERE id IN (SELECT value FROM json_each(@ids)) AND sentAt IS NULL",
    ),
    pending: sql.prepare("SELECT count(*) AS n FROM OutboxMessage WHERE sentAt IS NULL"),
  };
}

/** The recovery sweep's leases on lost tasks, and the workers' signs of life. */
function recoveryStatements(sql: Sql) {
  return {
    // A retry waits in a queue whose messages expire only at its head, so it may arrive up
    // to its own delay (retryAt - updatedAt) late: overdue is past due by that and the grace.
    // The lease is updatedAt (retryAt stays due, so the claim takes the job sent again): one
    // sweeper re-sends a task, the others pass it by for a grace period.
    overdueRetries: sql.prepare(`UPDATE Task SET retryAt = @now, updatedAt = @now WHERE id IN (
        SELECT id FROM Task WHERE state = '${RETRY}' AND retryAt < @cutoff
          AND 2 * julianday(retryAt) - julianday(updatedAt) < julianday(@cutoff)
        ORDER BY retryAt LIMIT @limit) AND state = '${RETRY}' RETURNING *`),
    // PENDING long after the broker took its job, and no run ever claimed it: the job was
    // dead-lettered without a state change (the database failed at every claim) or lost.
    // retryAt is the lease here too; a duplicate of a job still queued is skipped by the claim.
    stalePending: sql.prepare(`UPDATE Task SET retryAt = @lease, updatedAt = @now WHERE id IN (
        SELECT id FROM Task WHERE state = '${PENDING}' AND queuedAt < @pendingCutoff AND (retryAt IS NULL OR retryAt < @now)
        ORDER BY queuedAt LIMIT @limit) AND state = '${PENDING}' RETURNING *`),
    // The latest run of a STARTED task whose worker went silent, or one a sweep already
    // marked lost whose re-send never started; finishedAt is the lease.
    lostRuns: sql.prepare(`UPDATE Attempt SET outcome = 'LOST', finishedAt = @now,
        error = COALESCE(error, 'the worker stopped sending heartbeats; the job was sent again') WHERE id IN (
        SELECT a.id FROM Task t JOIN Attempt a ON a.taskId = t.id AND a.number = t.attemptCount
        LEFT JOIN Worker w ON w.id = a.workerId
        WHERE t.state = '${STARTED}' AND (
          (a.outcome IS NULL AND a.startedAt < @cutoff AND (w.lastSeenAt IS NULL OR w.lastSeenAt < @cutoff))
          OR (a.outcome = 'LOST' AND a.finishedAt < @cutoff))
        LIMIT @limit) RETURNING taskId`),
    workerSeen:
      sql.prepare(`INSERT INTO Worker (id, host, pid, startedAt, lastSeenAt) VALUES (@id, @host, @pid, @startedAt, @now)
      ON CONFLICT(id) DO UPDATE SET lastSeenAt = excluded.lastSeenAt`),
    forgetWorkers: sql.prepare("DELETE FROM Worker WHERE lastSeenAt < ?"),
  };
}

/** Deleting sent outbox rows and the runs of finished tasks, a batch at a time. */
function retentionStatements(sql: Sql) {
  return {
    outbox: sql.prepare(
      "DELETE FROM OutboxMessage WHERE id IN (SELECT id FROM OutboxMessage WHERE sentAt < @before ORDER BY sentAt LIMIT @batch)",
    ),
    attempts: sql.prepare(`DELETE FROM Attempt WHERE id IN (
        SELECT a.id FROM Attempt a JOIN Task t ON t.id = a.taskId
        WHERE t.state IN (${inList(FINISHED_STATES)}) AND t.finishedAt < @before LIMIT @batch)`),
  };
}

// The reads every page view makes (PageReads). A task's photos still in the gallery are
// counted by a subquery over TaskPhoto's primary key, whose first column is taskId.
function pageStatements(sql: Sql) {
  return {
    newestTasks: sql.prepare(`SELECT t.*, (SELECT count(*) FROM TaskPhoto tp WHERE tp.taskId = t.id) AS photosInGallery
      FROM Task t ORDER BY t.createdAt DESC, t.id DESC LIMIT ?`),
    photoTotal: sql.prepare("SELECT COALESCE(sum(value), 0) AS n FROM Counter WHERE name LIKE 'photos%'"),
    newestPhotos: sql.prepare(
      "SELECT id, url, breed, subBreed, createdAt FROM Photo ORDER BY id DESC LIMIT ? OFFSET ?",
    ),
    oldestPhotos: sql.prepare("SELECT id, url, breed, subBreed, createdAt FROM Photo ORDER BY id ASC LIMIT ? OFFSET ?"),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
