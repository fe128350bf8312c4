// Applies pending Prisma migrations before a process starts serving. Web and worker may
// start at the same moment, so a lock file next to the database lets one migrate while
// the other waits; the second then finds nothing to do. When nothing is pending (the
// usual start) the Prisma CLI is not run at all.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { mkdir, readdir } from "node:fs/promises";
import lockfile from "proper-lockfile";
import { databaseFile, projectRoot } from "./config.ts";
import { openSql } from "./sql.ts";

const run = promisify(execFile);
const prismaCli = path.join(projectRoot, "node_modules", "prisma", "build", "index.js");
const migrationsDir = path.join(projectRoot, "prisma", "migrations");

/**
 * Applies pending migrations under the lock. The check runs under the lock too, so no
 * connection of ours is open while another process migrates.
 */
export async function migrateIfNeeded(databaseUrl: string): Promise<void> {
  const file = databaseFile(databaseUrl);
  await mkdir(path.dirname(file), { recursive: true });
  const release = await lockfile.lock(file, {
    realpath: false,
    lockfilePath: `${file}.migrate.lock`,
    stale: 60_000,
    retries: { retries: 240, minTimeout: 100, maxTimeout: 500 },
  });
  try {
    if (!(await isUpToDate(databaseUrl))) await migrateDatabase(databaseUrl);
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
    throw new Error(`database migration failed: ${lines.filter((line) => line.includes("Error")).slice(0, 2).join(" ") || lines.at(-1)}`);
  }
}

async function isUpToDate(databaseUrl: string): Promise<boolean> {
  const wanted = (await readdir(migrationsDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  const sql = openSql(databaseUrl);
  try {
    const rows = sql.prepare("SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL").all() as { migration_name: string }[];
    const applied = new Set(rows.map((r) => r.migration_name));
    return wanted.every((name) => applied.has(name));
  } catch {
    return false; // no migrations table yet: a new database
  } finally {
    sql.close();
  }
}
