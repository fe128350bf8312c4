// The better-sqlite3 connection of the SQLite store (store.ts) and of the migration check
// (lib/store/migrate.ts), and the store's group commit. Write transactions are synchronous,
// with no await inside, so the write lock is held for microseconds and never across an
// await; Prisma's query compiler stays off this path, and a worker loads no Prisma client.
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { databaseFile } from "../../platform/config.ts";

export type Sql = Database.Database;

/** How long a write waits for another process's write lock before it fails. */
export const BUSY_TIMEOUT_MS = 5000;

export function openSql(url: string): Sql {
  const file = databaseFile(url);
  mkdirSync(path.dirname(file), { recursive: true });
  // No busy timeout: SQLite's own busy handler sleeps with the whole event loop stopped
  // (1, 2, 5, 10 ms...). writer() below waits for the lock without blocking instead.
  const sql = new Database(file, { timeout: 0 });
  sql.pragma("journal_mode = WAL");
  sql.pragma("synchronous = NORMAL");
  sql.pragma("foreign_keys = ON");
  // Each write of a group commit runs in a savepoint, and a savepoint keeps the original of
  // every page it changes in a sub-journal: a temporary file by default, so ~15 pwrite
  // calls per job in a busy worker. In memory it is a copy; it lives only until COMMIT.
  sql.pragma("temp_store = MEMORY");
  // The commit that takes the WAL past this many pages copies them into the database file
  // then and there, with its event loop stopped. A busy worker writes about a dozen pages per
  // job, so SQLite's default of 1,000 meant a checkpoint every few dozen jobs, each re-writing
  // the same hot pages (the tables' last leaves, the indexes on state); 4,000 (a WAL of up to
  // 16 MB) checkpoints a quarter as often.
  sql.pragma("wal_autocheckpoint = 4000");
  return sql;
}

/**
 * Wraps fn as a write that commits with every other write this connection is asked for
 * in the same turn of the event loop: one IMMEDIATE transaction for all of them (group
 * commit), each in a savepoint of its own, so one that throws is rolled back alone, unless
 * SQLite itself ended the transaction (disk full, I/O error): then none is committed and
 * all of the group fail. The
 * lock is taken at BEGIN, so a busy database fails there, before any work, and the group
 * is tried again after a pause that lets the event loop run (the holder needs
 * microseconds to milliseconds: first turns of the loop, then 1, 2, 4... ms), until BUSY_TIMEOUT_MS.
 * Fewer, larger transactions matter across processes: each one takes the lock and
 * re-reads pages another process changed.
 */
export function writer<A extends unknown[], R>(sql: Sql, fn: (...args: A) => R): (...args: A) => Promise<R> {
  const inSavepoint = sql.transaction(fn);
  const group = groupOf(sql);
  return (...args: A) => group.add(() => inSavepoint(...args));
}

interface Write {
  run: () => unknown;
  resolve: (value: never) => void;
  reject: (err: unknown) => void;
}

const groups = new WeakMap<Sql, { add<R>(run: () => R): Promise<R> }>();
const windows = new WeakMap<Sql, number>();
/** A group this large commits at once, window or not: one transaction stays short. */
const FULL_GROUP = 64;

/**
 * Makes this connection's writes wait up to ms for others before they commit, instead of
 * only until the next turn of the event loop: fewer, larger transactions, for a process
 * where throughput matters more than a few milliseconds per write (a worker, whose jobs
 * run side by side: every commit re-writes the pages they share, and makes the other
 * process re-read them). Call before the connection's first writer() is made: its group
 * reads the window when it is made.
 */
export function gatherWrites(sql: Sql, ms: number): void {
  windows.set(sql, ms);
}

function groupOf(sql: Sql) {
  let group = groups.get(sql);
  if (group) return group;
  const windowMs = windows.get(sql) ?? 0;
  let queued: Write[] = [];
  let timer: NodeJS.Timeout | undefined;
  let scheduled = false;
  const commitAll = sql.transaction((writes: Write[]) =>
    writes.map((write) => {
      try {
        return { ok: true as const, value: write.run() };
      } catch (err) {
        // SQLite rolled the whole transaction back: what follows would run in autocommit.
        if (!sql.inTransaction) throw err;
        return { ok: false as const, err };
      }
    }),
  );
  const flush = async () => {
    let deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (let tries = 0; ; tries++) {
      const writes = queued;
      queued = [];
      try {
        const results = commitAll.immediate(writes);
        results.forEach((result, i) =>
          result.ok ? writes[i]!.resolve(result.value as never) : writes[i]!.reject(result.err),
        );
      } catch (err) {
        // Busy at BEGIN: nothing ran. Wait, then try again with whatever joined meanwhile.
        if (isBusy(err) && Date.now() <= deadline) {
          queued = [...writes, ...queued];
          await pause(tries);
          continue;
        }
        for (const write of writes) write.reject(err);
      }
      if (queued.length === 0) break;
      tries = -1; // the writes that joined while this group ran start a fresh group, with a budget of their own
      deadline = Date.now() + BUSY_TIMEOUT_MS;
    }
    scheduled = false;
  };
  const flushNow = () => {
    clearTimeout(timer);
    timer = undefined;
    void flush();
  };
  group = {
    add<R>(run: () => R): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queued.push({ run, resolve: resolve as (value: never) => void, reject });
        if (!scheduled) {
          scheduled = true;
          if (windowMs > 0) timer = setTimeout(flushNow, windowMs);
          else setImmediate(flushNow);
        } else if (timer && queued.length >= FULL_GROUP) {
          clearTimeout(timer);
          timer = undefined;
          setImmediate(flushNow);
        }
      });
    },
  };
  groups.set(sql, group);
  return group;
}

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_RECOVERY, SQLITE_BUSY_SNAPSHOT...). */
function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

function pause(tries: number): Promise<void> {
  // The holder needs well under a few ms, less than the shortest timer: the first tries wait
  // a turn of the event loop each, and only then 1, 2, 4... ms.
  if (tries < 32) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, Math.min(2 ** (tries - 32), 16)));
}

/** How Prisma's adapter writes a DateTime on SQLite; raw SQL must write the same to compare and sort alike. */
export function sqlTime(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}
