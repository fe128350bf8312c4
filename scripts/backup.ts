// `npm run db:backup -- [file]`: an online copy of the SQLite database while web and
// workers keep writing, through SQLite's backup API (lib/store/sqlite/backup.ts), taken in
// one step from one read snapshot, so it is consistent and never restarts under writes.
// Default file: backups/gendog-<UTC time>.db under the project. On PostgreSQL, use
// pg_dump -Fc and pg_restore (the README says how).
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "../lib/platform/config.ts";
import { copySqlite, inspectSqlite } from "../lib/store/backup.ts";
import { fail, sqliteFileOrExit } from "./sqliteFile.ts";

const source = sqliteFileOrExit(
  "db:backup copies SQLite databases; for PostgreSQL use pg_dump -Fc (and pg_restore to restore): see the README",
);
if (!existsSync(source)) fail(`no database at ${source}; nothing to back up`);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const target = path.resolve(process.argv[2] ?? path.join(projectRoot, "backups", `gendog-${stamp}.db`));
mkdirSync(path.dirname(target), { recursive: true });

await copySqlite(source, target);
const { verdict } = inspectSqlite(target);
if (verdict !== "ok") fail(`the backup at ${target} fails SQLite's integrity check: ${verdict}`);
console.log(`backed up ${source} to ${target} (${statSync(target).size} bytes)`);
