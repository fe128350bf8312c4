// The PostgreSQL schema is generated from the SQLite one (scripts/postgres-schema.ts), and
// each store has its own migrations: they must not drift apart. And a PostgreSQL that is
// not there is one clear line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { projectRoot } from "../lib/platform/config.ts";
import { POSTGRES_SCHEMA, postgresSchema, SQLITE_SCHEMA } from "../scripts/postgres-schema.ts";

const migrations = async (...dir: string[]) =>
  (await readdir(path.join(projectRoot, "prisma", ...dir, "migrations"), { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();

test("when the SQLite schema changes, the PostgreSQL schema is regenerated with it (npm run db:postgres-schema)", async () => {
  const [sqlite, postgres] = await Promise.all([readFile(SQLITE_SCHEMA, "utf8"), readFile(POSTGRES_SCHEMA, "utf8")]);
  assert.equal(postgres, postgresSchema(sqlite));
});

test("both stores have the same migrations, by name and in order", async () => {
  const [sqlite, postgres] = await Promise.all([migrations(), migrations("postgres")]);
  assert.ok(sqlite.length > 0);
  assert.deepEqual(postgres, sqlite);
});

test("each migration lock names its own provider", async () => {
  assert.match(
    await readFile(path.join(projectRoot, "prisma", "migrations", "migration_lock.toml"), "utf8"),
    /provider = "sqlite"/,
  );
  assert.match(
    await readFile(path.join(projectRoot, "prisma", "postgres", "migrations", "migration_lock.toml"), "utf8"),
    /provider = "postgresql"/,
  );
});

test("when DATABASE_URL names a PostgreSQL that refuses the connection, the worker stops with one line naming the variable, password masked", async () => {
  const { spawnWorker } = await import("./support/faults.ts");
  const worker = spawnWorker({ DATABASE_URL: "postgresql://gendog:hunter2@127.0.0.1:1/gendog", LOG_LEVEL: "silent" });
  const exit = await worker.exited;
  assert.equal(exit.code, 1);
  const lines = worker.stderr().trim().split("\n");
  assert.equal(lines.length, 1, worker.stderr());
  assert.match(
    lines[0]!,
    /^gendog: configuration error: DATABASE_URL names a PostgreSQL that cannot be reached \(postgresql:\/\/gendog:\*\*\*@127\.0\.0\.1:1\/gendog\)/,
  );
  assert.ok(!worker.output().includes("hunter2"));
});

test("when a migration script fails part way on PostgreSQL, none of it is applied and the error is Prisma's", async () => {
  const { asPostgresAdmin, postgresUrl } = await import("./support/database.ts");
  const { postgresAdapter } = await import("../lib/store/postgres/adapter.ts");
  const name = `gendog_script_${process.pid}`;
  await asPostgresAdmin(`DROP DATABASE IF EXISTS ${name}`, `CREATE DATABASE ${name}`);
  const adapter = await postgresAdapter(postgresUrl(name)).connect();
  try {
    await assert.rejects(
      adapter.executeScript(`CREATE TABLE "HalfApplied" (x int); SELECT 1 / 0;`),
      (err: Error) => err.name === "DriverAdapterError",
    );
    const found = await adapter.queryRaw({
      sql: `SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'HalfApplied'`,
      args: [],
      argTypes: [],
    });
    assert.deepEqual(found.rows, [[0]], "the script's first statement was not run on its own after the failure");
  } finally {
    await adapter.dispose();
    await asPostgresAdmin(`DROP DATABASE ${name} WITH (FORCE)`);
  }
});
