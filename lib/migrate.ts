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
import { openDatabase, type Db } from "./db.ts";

const run = promisify(execFile);
const prismaCli = path.join(projectRoot, "node_modules", "prisma", "build", "index.js");
const migrationsDir = path.join(projectRoot, "prisma", "migrations");

/**
 * Opens the process's database, migrating it first if a migration is pending. The check
 * runs under the lock too, so no connection of ours is open while another migrates.
 */
export async function openMigratedDatabase(databaseUrl: string): Promise<Db> {
  const file = databaseFile(databaseUrl);
  await mkdir(path.dirname(file), { recursive: true });
  const release = await lockfile.lock(file, {
    realpath: false,
    lockfilePath: `${file}.migrate.lock`,
    stale: 60_000,
    retries: { retries: 240, minTimeout: 100, maxTimeout: 500 },
  });
  try {
    const db = await openDatabase(databaseUrl);
    if (await isUpToDate(db)) return db;
    // The schema engine needs the file to itself while it migrates.
    await db.$disconnect();
    await migrateDatabase(databaseUrl);
    return await openDatabase(databaseUrl);
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

async function isUpToDate(db: Db): Promise<boolean> {
  const wanted = (await readdir(migrationsDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  try {
    const rows = await db.$queryRawUnsafe<{ migration_name: string }[]>(
      "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
    );
    const applied = new Set(rows.map((r) => r.migration_name));
    return wanted.every((name) => applied.has(name));
  } catch {
    return false; // no migrations table yet: a new database
  }
}
