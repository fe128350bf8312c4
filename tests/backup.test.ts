// Data safety: an online backup while the job pipeline keeps writing, a restore that puts
// it back, and refusals that change nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { databaseFile } from "../lib/platform/config.ts";
import { createLifecycle } from "../lib/lifecycle/lifecycle.ts";
import { migrateIfNeeded } from "../lib/store/migrate.ts";
import { openStore } from "../lib/store/index.ts";
import { freshDatabase, type TestDatabase } from "./support/database.ts";

const run = promisify(execFile);
let dir: string;
let database: TestDatabase;

/** Runs a db script as `npm run` would, on this test's database; resolves with its exit code and output. */
async function script(name: "backup" | "restore", args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", `scripts/${name}.ts`, ...args], {
      env: { ...process.env, DATABASE_URL: database.url, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const taskIds = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return new Set((db.prepare("SELECT id FROM Task").all() as { id: string }[]).map((r) => r.id));
  } finally {
    db.close();
  }
};

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "gendog-backup-"));
  database = await freshDatabase(); // SQLite: this is what db:backup copies
  await migrateIfNeeded(database.url);
});
after(async () => {
  await database.drop();
  await rm(dir, { recursive: true, force: true });
});

test("when tasks are being written, a backup is a sound database holding every task committed before it began", async () => {
  const store = await openStore(database.url);
  const lifecycle = createLifecycle(store, { emit: () => {} });
  const accept = () => lifecycle.accept({ id: randomUUID(), breed: "pug", subBreed: null, limit: 1 }, "{}", 0);
  for (let i = 0; i < 200; i++) await accept();
  const before = taskIds(databaseFile(database.url));
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing && written < 20_000) {
      await Promise.all(Array.from({ length: 20 }, accept));
      written += 20;
    }
  })();
  const file = path.join(dir, "online.db");
  const result = await script("backup", [file]);
  writing = false;
  await writer;
  await store.close();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^backed up .* \(\d+ bytes\)\n$/);
  assert.ok(written > 0, "the pipeline kept writing during the backup");
  const copied = taskIds(file);
  for (const id of before) assert.ok(copied.has(id), `task ${id} is in the backup`);
  const check = new Database(file, { readonly: true });
  assert.equal(check.pragma("integrity_check", { simple: true }), "ok");
  check.close();
});

test("when a backup is restored, the database holds exactly the backup's tasks again", async () => {
  const file = path.join(dir, "restore-me.db");
  assert.equal((await script("backup", [file])).code, 0);
  const backedUp = taskIds(file);
  const store = await openStore(database.url);
  await createLifecycle(store, { emit: () => {} }).accept(
    { id: randomUUID(), breed: "pug", subBreed: null, limit: 1 },
    "{}",
    0,
  );
  await store.close();
  assert.equal(taskIds(databaseFile(database.url)).size, backedUp.size + 1);

  const result = await script("restore", [file]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(taskIds(databaseFile(database.url)), backedUp);
});

test("when the database is damaged and left a write-ahead log behind, restore replaces both with the backup", async () => {
  const file = path.join(dir, "before-damage.db");
  assert.equal((await script("backup", [file])).code, 0);
  const target = databaseFile(database.url);
  await writeFile(target, "overwritten by accident: not a database any more");
  await writeFile(`${target}-wal`, "a stale log from a crashed process");
  await writeFile(`${target}-shm`, "stale shared memory");

  const result = await script("restore", [file]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(taskIds(target), taskIds(file));
  const restored = new Database(target);
  assert.equal(restored.pragma("integrity_check", { simple: true }), "ok");
  restored.close();
});

test("when the file to restore is not a GenDog database, restore refuses in one line and changes nothing", async () => {
  const before = taskIds(databaseFile(database.url));
  const junk = path.join(dir, "junk.db");
  await writeFile(junk, "not a database at all");
  const other = path.join(dir, "other.db");
  new Database(other).exec("CREATE TABLE t (x)").close();
  for (const file of [junk, other, path.join(dir, "missing.db")]) {
    const result = await script("restore", [file]);
    assert.equal(result.code, 1, file);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /^gendog: /);
  }
  assert.deepEqual(taskIds(databaseFile(database.url)), before);
});

test("when DATABASE_URL is PostgreSQL, backup points to pg_dump and exits 2", async () => {
  const result = await script("backup", [], { DATABASE_URL: "postgresql://gendog@127.0.0.1:5432/gendog" });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /pg_dump -Fc/);
});
