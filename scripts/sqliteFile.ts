// What db:backup and db:restore share: one-line failures, and the SQLite file DATABASE_URL
// names (on PostgreSQL they point to pg_dump / pg_restore and exit 2).
import { databaseFile, databaseUrl, isPostgresUrl } from "../lib/platform/config.ts";

export function fail(text: string, code = 1): never {
  console.error(`gendog: ${text}`);
  process.exit(code);
}

/** The database file, or a one-line exit saying what to use instead. */
export function sqliteFileOrExit(onPostgres: string): string {
  let url = "";
  try {
    url = databaseUrl();
  } catch (err) {
    fail((err as Error).message);
  }
  if (isPostgresUrl(url)) fail(onPostgres, 2);
  return databaseFile(url);
}
