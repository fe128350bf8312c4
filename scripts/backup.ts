// `npm run db:backup -- [file]`: an online copy of the SQLite database while web and
// workers keep writing, through SQLite's backup API (better-sqlite3's backup()), taken in
// one step from one read snapshot, so it is consistent and never restarts under writes.
// Default file: backups/gendog-<UTC time>.db under the project. On PostgreSQL, use
// pg_dump -Fc and pg_restore (the README says how).
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { projectRoot } from "../lib/platform/config.ts";
import { fail, sqliteFileOrExit } from "./sqliteFile.ts";

const source = sqliteFileOrExit("db:backup copies SQLite databases; for PostgreSQL use pg_dump -Fc (and pg_restore to restore): see the README");
if (!existsSync(source)) fail(`no database at ${source}; nothing to back up`);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const target = path.resolve(process.argv[2] ?? path.join(projectRoot, "backups", `gendog-${stamp}.db`));
mkdirSync(path.dirname(target), { recursive: true });

const db = new Database(source, { readonly: true, fileMustExist: true });
try {
  // All remaining pages in one step: a read snapshot (WAL lets writers go on meanwhile).
  await db.backup(target, { progress: () => 0x7fffffff });
} finally {
  db.close();
}
const check = new Database(target, { readonly: true });
const verdict = check.pragma("integrity_check", { simple: true });
check.close();
if (verdict !== "ok") fail(`the backup at ${target} fails SQLite's integrity check: ${String(verdict)}`);
console.log(`backed up ${source} to ${target} (${statSync(target).size} bytes)`);
