// Applies pending Prisma migrations before a process starts serving. Webs and workers may
// start at the same moment, so one migrates while the others wait under a lock (a lock
// file next to a SQLite database; a PostgreSQL advisory lock, since the processes may be
// on several machines); the others then find nothing to do. When nothing is pending (the
// usual start) the Prisma CLI is not run at all.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { mkdir, readdir } from "node:fs/promises";
import pg from "pg";
import lockfile from "proper-lockfile";
import { ConfigError, databaseFile, isPostgresUrl, maskUrl, projectRoot } from "../platform/config.ts";
import { openSql } from "./sqlite/connection.ts";

const run = promisify(execFile);
const prismaCli = path.join(projectRoot, "node_modules", "prisma", "build", "index.js");
const migrationsDir = (url: string) =>
  path.join(projectRoot, "prisma", ...(isPostgresUrl(url) ? ["postgres"] : []), "migrations");
/** Not Prisma's own key (72707369): migrate deploy takes that one inside ours. */
const ADVISORY_LOCK_KEY = 4_771_002_615;
const APPLIED =
  "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL";

/**
 * Applies pending migrations under the lock. The check runs under the lock too, so no
 * connection of ours is open while another process migrates.
 */
export async function migrateIfNeeded(databaseUrl: string): Promise<void> {
  if (isPostgresUrl(databaseUrl)) return migratePostgres(databaseUrl);
  const file = databaseFile(databaseUrl);
  await mkdir(path.dirname(file), { recursive: true });
  const release = await lockfile.lock(file, {
    realpath: false,
    lockfilePath: `${file}.migrate.lock`,
    stale: 60_000,
    retries: { retries: 240, minTimeout: 100, maxTimeout: 500 },
  });
  try {
    if (!(await isUpToDate(databaseUrl, sqliteApplied))) await migrateDatabase(databaseUrl);
  } finally {
    await release();
  }
}

/** Runs `prisma migrate deploy` (what `npm run db:migrate` does). */
async function migrateDatabase(databaseUrl: string): Promise<void> {
  try {
    await run(process.execPath, [prismaCli, "migrate", "deploy"], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });
  } catch (err) {
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    const lines = (stderr || stdout || (err as Error).message).trim().split("\n");
    throw new Error(
      `database migration failed: ${
        lines
          .filter((line) => line.includes("Error"))
          .slice(0, 2)
          .join(" ") || lines.at(-1)
      }`,
      { cause: err },
    );
  }
}

async function migratePostgres(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  // A reset while waiting for the lock (or migrating) fails the query below, which says so;
  // unheard, the client's 'error' event would end the process with a stack trace instead.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new ConfigError(
      "DATABASE_URL",
      `names a PostgreSQL that cannot be reached (${maskUrl(databaseUrl)}): ${(err as Error).message}`,
    );
  }
  try {
    await client.query("SELECT pg_advisory_lock($1)", [ADVISORY_LOCK_KEY]);
    const applied = async () =>
      (await client.query<{ migration_name: string }>(APPLIED)).rows.map((r) => r.migration_name);
    if (!(await isUpToDate(databaseUrl, applied))) await migrateDatabase(databaseUrl);
  } finally {
    await client.end().catch(() => {}); // ending the session releases the lock
  }
}

function sqliteApplied(databaseUrl: string): string[] {
  const sql = openSql(databaseUrl);
  try {
    return (sql.prepare(APPLIED).all() as { migration_name: string }[]).map((r) => r.migration_name);
  } finally {
    sql.close();
  }
}

async function isUpToDate(
  databaseUrl: string,
  applied: (url: string) => string[] | Promise<string[]>,
): Promise<boolean> {
  const wanted = (await readdir(migrationsDir(databaseUrl), { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  try {
    const done = new Set(await applied(databaseUrl));
    return wanted.every((name) => done.has(name));
  } catch {
    return false; // no migrations table yet: a new database
  }
}
