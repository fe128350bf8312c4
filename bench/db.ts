// The bench's SQLite side: a migrated template copied for each run, seeding by direct SQL
// (100,000 photos through Prisma would take minutes), and a read-only watcher that tells
// when every submitted task has finished.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { ROOT, sleep } from "./processes.ts";

/** Runs `prisma migrate deploy` once into a template file; each run copies it. */
export async function migratedTemplate(dir: string): Promise<string> {
  const file = path.join(dir, "template.db");
  await promisify(execFile)(
    process.execPath,
    [path.join(ROOT, "node_modules", "prisma", "build", "index.js"), "migrate", "deploy"],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: `file:${file}` },
      timeout: 120_000,
    },
  );
  return file;
}

export async function freshDatabase(template: string, dir: string, name: string): Promise<string> {
  const file = path.join(dir, `${name}.db`);
  await copyFile(template, file);
  return file;
}

/**
 * How the app stores DateTime: Prisma's better-sqlite3 adapter writes ISO 8601 text with
 * "+00:00" for "Z" (its default timestampFormat "iso8601"; lib/store/sqlite/connection.ts sqlTime does the
 * same), e.g. 2026-11-22T15:51:00.123+00:00. Seeded rows match, so ORDER BY and the
 * adapter's parsing treat them like the app's own; run.ts checks a row the app wrote.
 */
export const sqlTime = (ms: number) => new Date(ms).toISOString().replace("Z", "+00:00");
export const isSqlTime = (text: unknown) =>
  typeof text === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/.test(text);

/** Finished tasks with their photos and attempts, and a gallery of `photos` images. */
export function seed(file: string, photos: number, tasks: number): void {
  const db = new Database(file);
  const base = Date.now() - (photos + tasks) * 1000; // one second apart, oldest first, all in the past
  const photo = db.prepare("INSERT INTO Photo (url, breed, subBreed, createdAt) VALUES (?, 'hound', 'afghan', ?)");
  const task =
    db.prepare(`INSERT INTO Task (id, breed, subBreed, "limit", state, photoCount, attemptCount, createdAt, queuedAt, startedAt, finishedAt, updatedAt)
    VALUES (@id, 'hound', 'afghan', 5, 'SUCCESS', @count, 1, @at, @at, @at, @at, @at)`);
  const link = db.prepare("INSERT INTO TaskPhoto (taskId, photoId, position) VALUES (?, ?, ?)");
  const attempt = db.prepare(
    "INSERT INTO Attempt (taskId, number, workerId, startedAt, finishedAt, outcome) VALUES (?, 1, 'bench-seed', ?, ?, 'SUCCESS')",
  );
  db.transaction(() => {
    for (let i = 1; i <= photos; i++)
      photo.run(`https://images.dog.ceo/breeds/hound-afghan/n02088094_${i}.jpg`, sqlTime(base + i * 1000));
    for (let t = 0; t < tasks; t++) {
      const id = randomUUID();
      const at = sqlTime(base + (photos + t) * 1000);
      // Each task found 5 of the photos (ids 1..photos exist: AUTOINCREMENT from an empty table).
      const found = Array.from({ length: 5 }, (_, k) => ((t * 5 + k) % photos) + 1);
      task.run({ id, count: found.length, at });
      found.forEach((photoId, position) => link.run(id, photoId, position));
      attempt.run(id, at, at);
    }
  })();
  db.close();
}

export interface Drained {
  /** The last task's finishedAt as written by the worker (wall clock ms). */
  lastFinishedMs: number;
  succeeded: number;
  failed: number;
  /** A createdAt the app wrote, to check seed()'s format against. */
  sampleCreatedAt: unknown;
}

/**
 * Waits, reading the file read-only every 50 ms, until `count` tasks are final. The end
 * time is the newest finishedAt rather than the moment of the poll that saw it: exact,
 * where the poll would add up to 50 ms.
 */
export async function waitForTasks(file: string, count: number, deadline: number): Promise<Drained> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const progress =
      db.prepare(`SELECT sum(state = 'SUCCESS') AS succeeded, sum(state <> 'SUCCESS') AS failed, max(finishedAt) AS last
      FROM Task WHERE state IN ('SUCCESS', 'FAILURE', 'REVOKED')`);
    for (;;) {
      const row = progress.get() as { succeeded: number | null; failed: number | null; last: string | null };
      const succeeded = row.succeeded ?? 0;
      const failed = row.failed ?? 0;
      if (succeeded + failed >= count) {
        const sample = (db.prepare("SELECT createdAt FROM Task LIMIT 1").get() as { createdAt: unknown } | undefined)
          ?.createdAt;
        return { lastFinishedMs: Date.parse(row.last ?? ""), succeeded, failed, sampleCreatedAt: sample };
      }
      if (Date.now() > deadline)
        throw new Error(`only ${succeeded} of ${count} tasks SUCCESS (${failed} failed) by the deadline`);
      await sleep(50);
    }
  } finally {
    db.close();
  }
}
