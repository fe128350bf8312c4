// The SQLite driver connection for the job pipeline (lib/lifecycle.ts) and the migration
// check. Synchronous transactions with no await inside hold the write lock for
// microseconds, never across an await, and keep Prisma's query compiler off the hot path;
// a worker loads nothing of Prisma at all.
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { databaseFile } from "./config.ts";

export type Sql = Database.Database;

// better-sqlite3 waits synchronously, so keep it short: no write transaction here is
// held across an await, so none lasts longer than a few milliseconds.
export const BUSY_TIMEOUT_MS = 5000;

export function openSql(url: string): Sql {
  const file = databaseFile(url);
  mkdirSync(path.dirname(file), { recursive: true });
  const sql = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  sql.pragma("journal_mode = WAL");
  sql.pragma("synchronous = NORMAL");
  sql.pragma("foreign_keys = ON");
  return sql;
}

/** How Prisma's adapter writes a DateTime on SQLite; raw SQL must write the same to compare and sort alike. */
export function sqlTime(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}
