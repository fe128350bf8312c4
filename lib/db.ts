// The one PrismaClient of a process, over better-sqlite3, tuned so that the web's reads
// and the workers' writes do not block each other (WAL) and a briefly busy file is
// waited for instead of failing (busy timeout).
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "../generated/prisma/client.ts";
import { databaseFile } from "./config.ts";

export type Db = PrismaClient;

// better-sqlite3 waits synchronously, so keep it short: writes here take milliseconds.
const BUSY_TIMEOUT_MS = 5000;

export async function openDatabase(url: string): Promise<Db> {
  await mkdir(path.dirname(databaseFile(url)), { recursive: true });
  const adapter = new PrismaBetterSQLite3({ url, timeout: BUSY_TIMEOUT_MS });
  const db = new PrismaClient({ adapter });
  await db.$queryRawUnsafe("PRAGMA journal_mode = WAL");
  await db.$queryRawUnsafe("PRAGMA synchronous = NORMAL");
  await db.$queryRawUnsafe("PRAGMA foreign_keys = ON");
  return db;
}
