// A fresh, migrated database for each test stack: a SQLite file copied from a template, or
// with TEST_DATABASE=postgres a PostgreSQL database created from a migrated template on the
// machine's server (TEST_POSTGRES_URL, by default the trusted local superuser), dropped after.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { projectRoot } from "../../lib/platform/config.ts";
import { openMigratedDatabase } from "../../lib/store/db.ts";

export const onPostgres = process.env.TEST_DATABASE === "postgres";
const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

let template: Promise<string> | undefined;

export function freshDatabase(): Promise<TestDatabase> {
  return onPostgres ? freshPostgres() : freshSqlite();
}

async function freshSqlite(): Promise<TestDatabase> {
  template ??= sqliteTemplate();
  const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-test-"));
  const file = path.join(dir, "gendog.db");
  await copyFile(await template, file);
  return { url: `file:${file}`, drop: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A SQLite file migrated by `prisma migrate deploy`, kept in the temp folder under a hash of
 * the migrations: running the Prisma CLI takes seconds, and each test process would run it
 * again for the same schema. A changed migration makes a new one.
 */
async function sqliteTemplate(): Promise<string> {
  const kept = path.join(os.tmpdir(), `gendog-template-${await migrationsHash()}.db`);
  if (existsSync(kept)) return kept;
  const dir = await mkdtemp(path.join(os.tmpdir(), "gendog-template-"));
  const file = path.join(dir, "template.db");
  const db = await openMigratedDatabase(`file:${file}`);
  await db.$queryRawUnsafe("PRAGMA wal_checkpoint(TRUNCATE)");
  await db.$disconnect();
  // Whole or not at all: another test process may be copying the kept file this moment.
  await rename(file, kept);
  await rm(dir, { recursive: true, force: true });
  return kept;
}

async function migrationsHash(): Promise<string> {
  const dir = path.join(projectRoot, "prisma", "migrations");
  const hash = createHash("sha256");
  for (const name of (await readdir(dir)).sort()) {
    const sql = path.join(dir, name, "migration.sql");
    const text = await readFile(sql, "utf8").catch(() => undefined);
    if (text !== undefined) hash.update(`${name}\n${text}\n`);
  }
  return hash.digest("hex").slice(0, 16);
}

/** Runs statements as the admin, one connection each time (CREATE DATABASE cannot run in a transaction). */
export async function asPostgresAdmin(...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

export function postgresUrl(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

async function freshPostgres(): Promise<TestDatabase> {
  template ??= (async () => {
    const name = `gendog_template_${process.pid}_${randomBytes(3).toString("hex")}`;
    await asPostgresAdmin(`CREATE DATABASE ${name}`);
    process.once("beforeExit", () => void dropTemplate());
    const db = await openMigratedDatabase(postgresUrl(name));
    await db.$disconnect();
    return name;
  })();
  const source = await template;
  const name = `gendog_test_${randomBytes(5).toString("hex")}`;
  await asPostgresAdmin(`CREATE DATABASE ${name} TEMPLATE ${source}`);
  return { url: postgresUrl(name), drop: () => asPostgresAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Drops the template this test process made, once its tests are done. */
async function dropTemplate(): Promise<void> {
  if (!onPostgres || !template) return;
  const name = await template.catch(() => undefined);
  if (name) await asPostgresAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
