// lib/store/sqlite/connection.ts's writer: the writes asked for in one turn of the event loop commit as one
// SQLite transaction, each in its own savepoint; what one write does never leaks into
// another's fate, and nothing commits behind the group's back.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { gatherWrites, openSql, writer, type Sql } from "../lib/store/sqlite/connection.ts";

let dir: string;
let file: string;
let sql: Sql;
let insert: (name: string) => Promise<number>;
const names = () => (sql.prepare("SELECT name FROM item ORDER BY name").all() as { name: string }[]).map((r) => r.name);

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "gendog-group-commit-"));
  file = path.join(dir, "db.sqlite");
  sql = openSql(`file:${file}`);
  sql.exec("CREATE TABLE item (name TEXT PRIMARY KEY)");
  const statement = sql.prepare("INSERT INTO item (name) VALUES (?)");
  insert = writer(sql, (name: string) => Number(statement.run(name).lastInsertRowid));
});

after(() => {
  sql.close();
  rmSync(dir, { recursive: true, force: true });
});

test("writes asked for in one turn all commit, and one that throws is rolled back alone", async () => {
  sql.exec("DELETE FROM item");
  const results = await Promise.allSettled([insert("a"), insert("a"), insert("b")]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["fulfilled", "rejected", "fulfilled"],
  );
  assert.match(String((results[1] as PromiseRejectedResult).reason), /UNIQUE constraint failed/);
  assert.deepEqual(names(), ["a", "b"]);
});

test("when SQLite ends the group's transaction itself, no write of the group commits and each one fails", async () => {
  sql.exec("DELETE FROM item");
  // What SQLite does on a full disk or an I/O error: the whole transaction is rolled back.
  const endsTheTransaction = writer(sql, () => sql.exec("ROLLBACK"));
  const results = await Promise.allSettled([insert("before"), endsTheTransaction(), insert("after")]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected", "rejected"],
  );
  assert.deepEqual(names(), [], "nothing committed in autocommit after the rollback");
  assert.equal(await insert("later"), 1, "the next group commits as usual");
});

test("while another process holds the write lock, writes wait for it without blocking the event loop, then commit", async () => {
  sql.exec("DELETE FROM item");
  const other = new Database(file);
  other.exec("BEGIN IMMEDIATE");
  other.prepare("INSERT INTO item (name) VALUES (?)").run("other");
  let ticks = 0;
  const ticker = setInterval(() => (ticks += 1), 5);
  const write = insert("mine");
  setTimeout(() => {
    other.exec("COMMIT");
    other.close();
  }, 150);
  await write;
  clearInterval(ticker);
  assert.deepEqual(names(), ["mine", "other"]);
  assert.ok(ticks >= 10, `the event loop ran while the write waited (${ticks} ticks of 5 ms in 150 ms)`);
});

test("with a commit window, writes asked for within it commit together when it ends, and a full group commits at once", async () => {
  sql.exec("DELETE FROM item");
  const gathering = openSql(`file:${file}`); // as a worker's connection is opened
  // Windows far longer than a busy machine's hiccups, so no assertion depends on how fast it runs.
  gatherWrites(gathering, 2_000);
  const statement = gathering.prepare("INSERT INTO item (name) VALUES (?)");
  const put = writer(gathering, (name: string) => void statement.run(name));
  const patient = openSql(`file:${file}`);
  gatherWrites(patient, 600_000);
  const patientStatement = patient.prepare("INSERT INTO item (name) VALUES (?)");
  const putPatiently = writer(patient, (name: string) => void patientStatement.run(name));
  try {
    const began = Date.now();
    const first = put("first");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(names(), [], "nothing is committed while the window is open");
    const settled: string[] = [];
    await Promise.all([first.then(() => settled.push("first")), put("second").then(() => settled.push("second"))]);
    assert.ok(Date.now() - began >= 1_900, `committed when the window ended (${Date.now() - began} ms)`);
    assert.deepEqual(names(), ["first", "second"]);

    // A ten-minute window: the 64 writes settle only if a full group commits without waiting for it.
    await Promise.all(Array.from({ length: 64 }, (_, i) => putPatiently(`full-${String(i).padStart(2, "0")}`)));
    assert.equal(names().length, 66);
  } finally {
    gathering.close();
    patient.close();
  }
});
