// Copies of the SQLite database for db:backup and db:restore (scripts/), through SQLite's
// backup API (better-sqlite3's backup()): taken in one step from one read snapshot, so a
// copy is consistent while others keep writing (WAL lets them) and never restarts.
import Database from "better-sqlite3";

/** Copies every page of `source` (and of its -wal) to `target`. */
export async function copySqlite(source: string, target: string): Promise<void> {
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    await db.backup(target, { progress: () => 0x7fffffff });
  } finally {
    db.close();
  }
}

/** SQLite's integrity check ("ok" or what is wrong) and the file's tables; throws if it is no SQLite database. */
export function inspectSqlite(file: string): { verdict: string; tables: Set<string> } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const verdict = String(db.pragma("integrity_check", { simple: true }));
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    return { verdict, tables: new Set(tables.map((t) => t.name)) };
  } finally {
    db.close();
  }
}
