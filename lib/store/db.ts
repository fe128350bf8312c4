// The Prisma client under the queries of pages and use cases (queries/), on SQLite
// (better-sqlite3, WAL mode, so the web's reads and the workers' writes do not block each
// other) or on PostgreSQL, as DATABASE_URL says. Only lib/store/ holds one (tests too).
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { databaseFile, isPostgresUrl } from "../platform/config.ts";
import { migrateIfNeeded } from "./migrate.ts";
import { BUSY_TIMEOUT_MS } from "./sqlite/connection.ts";

/** Typed as the SQLite client: the PostgreSQL one, generated from the same models, has the same queries. */
export type Db = PrismaClient;

export async function openDatabase(url: string): Promise<Db> {
  if (isPostgresUrl(url)) {
    const [{ PrismaClient: PostgresClient }, { postgresAdapter }] = await Promise.all([
      import("../../generated/postgres/client.ts"),
      import("./postgres/adapter.ts"),
    ]);
    const db = new PostgresClient({ adapter: postgresAdapter(url) }) as unknown as Db;
    onPostgres.add(db);
    return db;
  }
  await mkdir(path.dirname(databaseFile(url)), { recursive: true });
  const adapter = new PrismaBetterSQLite3({ url, timeout: BUSY_TIMEOUT_MS });
  const db = new PrismaClient({ adapter });
  await db.$queryRawUnsafe("PRAGMA journal_mode = WAL");
  await db.$queryRawUnsafe("PRAGMA synchronous = NORMAL");
  await db.$queryRawUnsafe("PRAGMA foreign_keys = ON");
  return db;
}

/** Clients on PostgreSQL: it sorts an enum in its declared order, SQLite by its text. */
const onPostgres = new WeakSet<Db>();
export const isOnPostgres = (db: Db) => onPostgres.has(db);

/** Opens the process's Prisma client on a database migrated first if needed. */
export async function openMigratedDatabase(databaseUrl: string): Promise<Db> {
  await migrateIfNeeded(databaseUrl);
  return openDatabase(databaseUrl);
}
