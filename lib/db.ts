// The Prisma client of a web process, over better-sqlite3 in WAL mode (the web's reads and
// the workers' writes do not block each other): the schema's types and the rich reads of
// pages. The job pipeline's writes go through the driver itself (lib/sql.ts).
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "../generated/prisma/client.ts";
import { databaseFile } from "./config.ts";
import { migrateIfNeeded } from "./migrate.ts";
import { BUSY_TIMEOUT_MS } from "./sql.ts";

export type Db = PrismaClient;

export async function openDatabase(url: string): Promise<Db> {
  await mkdir(path.dirname(databaseFile(url)), { recursive: true });
  const adapter = new PrismaBetterSQLite3({ url, timeout: BUSY_TIMEOUT_MS });
  const db = new PrismaClient({ adapter });
  await db.$queryRawUnsafe("PRAGMA journal_mode = WAL");
  await db.$queryRawUnsafe("PRAGMA synchronous = NORMAL");
  await db.$queryRawUnsafe("PRAGMA foreign_keys = ON");
  return db;
}

/** Opens the process's Prisma client on a database migrated first if needed. */
export async function openMigratedDatabase(databaseUrl: string): Promise<Db> {
  await migrateIfNeeded(databaseUrl);
  return openDatabase(databaseUrl);
}
