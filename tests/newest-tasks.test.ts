// The newest tasks (every home page, live stream and monitor view reads them) come out of an
// index in their order, createdAt then id, even when thousands share one createdAt (an
// import, a script): with an index on createdAt alone, each view sorted all of those.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import pg from "pg";
import { databaseFile } from "../lib/platform/config.ts";
import { freshDatabase, onPostgres, type TestDatabase } from "./support/database.ts";

const SAME_MOMENT = 5_000;
let database: TestDatabase;
before(async () => (database = await freshDatabase()));
after(() => database.drop());

/** What the database does to answer the page read's order, one plan line per step. */
async function planOfNewestTasks(): Promise<string> {
  const insert = `INSERT INTO "Task" (id, breed, "limit", state, "photoCount", "attemptCount", "attemptBase", "createdAt", "updatedAt")`;
  if (onPostgres) {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(
        `${insert} SELECT 't' || i, 'pug', 1, 'SUCCESS', 0, 1, 0, '2026-12-07 10:00:00', '2026-12-07 10:00:00' FROM generate_series(1, $1) AS i`,
        [SAME_MOMENT],
      );
      await client.query(`ANALYZE "Task"`);
      const rows = await client.query(`EXPLAIN SELECT * FROM "Task" t ORDER BY t."createdAt" DESC, t.id DESC LIMIT 25`);
      return rows.rows.map((row: Record<string, string>) => row["QUERY PLAN"]).join("\n");
    } finally {
      await client.end();
    }
  }
  const sql = new Database(databaseFile(database.url));
  try {
    const moment = Date.parse("2026-12-07T10:00:00Z");
    const add = sql.prepare(`${insert} VALUES (?, 'pug', 1, 'SUCCESS', 0, 1, 0, ?, ?)`);
    sql.transaction(() => {
      for (let i = 1; i <= SAME_MOMENT; i++) add.run(`t${i}`, moment, moment);
    })();
    sql.exec("ANALYZE");
    const rows = sql
      .prepare(`EXPLAIN QUERY PLAN SELECT * FROM Task t ORDER BY t.createdAt DESC, t.id DESC LIMIT 25`)
      .all() as { detail: string }[];
    return rows.map((row) => row.detail).join("\n");
  } finally {
    sql.close();
  }
}

test("when thousands of tasks share one creation time, the newest are read from an index in order, with no sort", async () => {
  const plan = await planOfNewestTasks();
  assert.match(plan, /Task_createdAt_id_idx/, plan);
  assert.doesNotMatch(plan, /TEMP B-TREE|Sort/, plan);
});
