// Applies pending Prisma migrations before a process starts serving. Web and worker may
// start at the same moment, so a lock file next to the database lets one migrate while
// the other waits; the second run then finds nothing to do.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { mkdir } from "node:fs/promises";
import lockfile from "proper-lockfile";
import { databaseFile, projectRoot } from "./config.ts";

const run = promisify(execFile);
const prismaCli = path.join(projectRoot, "node_modules", "prisma", "build", "index.js");

export async function migrateDatabase(databaseUrl: string): Promise<void> {
  const file = databaseFile(databaseUrl);
  await mkdir(path.dirname(file), { recursive: true });
  const release = await lockfile.lock(file, {
    realpath: false,
    lockfilePath: `${file}.migrate.lock`,
    stale: 60_000,
    retries: { retries: 120, minTimeout: 250, maxTimeout: 1000 },
  });
  try {
    await run(process.execPath, [prismaCli, "migrate", "deploy"], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });
  } catch (err) {
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    throw new Error(`database migration failed: ${(stderr || stdout).trim().split("\n").slice(-3).join(" ")}`);
  } finally {
    await release();
  }
}
