// `npm run db:restore -- <backup file>`: puts a backup made by db:backup back as the
// database DATABASE_URL names. Stop web and workers first: they hold the old file open.
// The file must be a sound GenDog database (SQLite's integrity check, and its tables).
// It is copied beside the target and renamed over it, so a damaged database (the usual
// reason to restore) is replaced without being read, and a failure midway leaves it as it was.
import { existsSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { copySqlite, inspectSqlite } from "../lib/store/backup.ts";
import { fail, sqliteFileOrExit } from "./sqliteFile.ts";

const target = sqliteFileOrExit("db:restore restores SQLite backups; for PostgreSQL use pg_restore (see the README)");
const file = process.argv[2] ? path.resolve(process.argv[2]) : fail("usage: npm run db:restore -- <backup file>");
if (!existsSync(file)) fail(`no backup at ${file}`);

try {
  const { verdict, tables } = inspectSqlite(file);
  if (verdict !== "ok") throw new Error(`it fails SQLite's integrity check (${verdict})`);
  for (const table of ["Task", "Photo", "_prisma_migrations"])
    if (!tables.has(table)) throw new Error(`it has no ${table} table`);
} catch (err) {
  fail(`${file} is not a GenDog database backup: ${(err as Error).message.split("\n")[0]}; nothing was changed`);
}
const copy = `${target}.restoring`;
rmSync(copy, { force: true }); // left by a restore that crashed
try {
  // Through the backup API, not a file copy: it takes any pages still in the backup's own -wal too.
  await copySqlite(file, copy);
  // The old database's -wal would be replayed onto the restored file at its next open.
  for (const stale of [`${target}-wal`, `${target}-shm`]) rmSync(stale, { force: true });
  renameSync(copy, target);
} catch (err) {
  rmSync(copy, { force: true });
  fail(`restoring ${target} failed: ${(err as Error).message.split("\n")[0]}`);
}
console.log(`restored ${target} from ${file}`);
