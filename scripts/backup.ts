// `npm run db:backup -- [file]`: an online copy of the SQLite database while web and
// workers keep writing, through SQLite's backup API (better-sqlite3's backup()), taken in
// one step from one read snapshot, so it is consistent and never restarts under writes.
// Default file: backups/gendog-<UTC time>.db under the project. On PostgreSQL, use
// pg_dump -Fc and pg_restore (the README says how).
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { databaseFile, databaseUrl, isPostgresUrl, projectRoot } from "../lib/config.ts";

const fail = (text: string, code = 1): never => {
  console.error(`gendog: ${text}`);
  process.exit(code);
};

let url = "";
try {
  url = databaseUrl();
} catch (err) {
  fail((err as Error).message);
}
if (isPostgresUrl(url)) fail("db:backup copies SQLite databases; for PostgreSQL use pg_dump -Fc (and pg_restore to restore): see the README", 2);
if (!existsSync(databaseFile(url))) fail(`no database at ${databaseFile(url)}; nothing to back up`);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const target = path.resolve(process.argv[2] ?? path.join(projectRoot, "backups", `gendog-${stamp}.db`));
mkdirSync(path.dirname(target), { recursive: true });

const source = new Database(databaseFile(url), { readonly: true, fileMustExist: true });
try {
  // All remaining pages in one step: a read snapshot (WAL lets writers go on meanwhile).
  await source.backup(target, { progress: () => 0x7fffffff });
} finally {
  source.close();
}
const check = new Database(target, { readonly: true });
const verdict = check.pragma("integrity_check", { simple: true });
check.close();
if (verdict !== "ok") fail(`the backup at ${target} fails SQLite's integrity check: ${String(verdict)}`);
console.log(`backed up ${databaseFile(url)} to ${target} (${statSync(target).size} bytes)`);
