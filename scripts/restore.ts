// `npm run db:restore -- <backup file>`: puts a backup made by db:backup back as the
// database DATABASE_URL names. Stop web and workers first. The file must be a sound GenDog
// database (SQLite's integrity check, and its tables); it is copied in through the backup
// API, which replaces the database's pages properly, its write-ahead log included.
import { existsSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { databaseFile, databaseUrl, isPostgresUrl } from "../lib/config.ts";

const fail = (text: string, code = 1): never => {
  console.error(`gendog: ${text}`);
  process.exit(code);
};

const url = databaseUrl();
if (isPostgresUrl(url)) fail("db:restore restores SQLite backups; for PostgreSQL use pg_restore (see the README)", 2);
const file = process.argv[2] ? path.resolve(process.argv[2]) : fail("usage: npm run db:restore -- <backup file>");
if (!existsSync(file)) fail(`no backup at ${file}`);

let backup: Database.Database | undefined;
try {
  backup = new Database(file, { readonly: true, fileMustExist: true });
  const verdict = backup.pragma("integrity_check", { simple: true });
  if (verdict !== "ok") throw new Error(`it fails SQLite's integrity check (${String(verdict)})`);
  const tables = new Set((backup.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
  for (const table of ["Task", "Photo", "_prisma_migrations"]) if (!tables.has(table)) throw new Error(`it has no ${table} table`);
} catch (err) {
  backup?.close();
  fail(`${file} is not a GenDog database backup: ${(err as Error).message.split("\n")[0]}; nothing was changed`);
}
const target = databaseFile(url);
await backup!.backup(target, { progress: () => 0x7fffffff });
backup!.close();
console.log(`restored ${target} from ${file}`);
