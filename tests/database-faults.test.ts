// The database as a flaky network shows it: PostgreSQL behind a TCP proxy of the test's own
// (the machine's server is never touched) reset under load, cut for seconds, or silent.
// The processes must keep running, answer clearly while it is away, and lose or double no
// job. On SQLite the "silent database" is a write lock another connection holds.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Db } from "../lib/db.ts";
import { onPostgres } from "./support/database.ts";
import { configEnv, spawnWorker, startTcpProxy, type ChildApp, type TcpProxy } from "./support/faults.ts";
import { queueDepth, startStack, waitFor, type Stack } from "./support/stack.ts";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";

const BREEDS = ["hound/afghan", "bulldog/french", "pug", "husky", "beagle", "akita", "boxer", "collie/border"];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const onlyPostgres = onPostgres ? false : "PostgreSQL only (TEST_DATABASE=postgres): SQLite is a file, there is no connection to cut";

/** The test's database URL with the proxy in front of its server. */
function proxiedUrl(databaseUrl: string, proxy: TcpProxy): string {
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  return url.toString();
}

function postgresPort(databaseUrl: string): number {
  return Number(new URL(databaseUrl).port || 5432);
}

function isAlive(app: ChildApp): boolean {
  return app.child.exitCode === null && app.child.signalCode === null;
}

/** Every task SUCCESS with its photos, finished by exactly one run, no photo linked twice. */
async function audit(db: Db, ids: string[]) {
  const tasks = await db.task.findMany({
    where: { id: { in: ids } },
    include: { photos: { include: { photo: true } }, attempts: true },
  });
  const problems: string[] = [];
  if (tasks.length !== ids.length) problems.push(`${ids.length - tasks.length} tasks missing`);
  for (const task of tasks) {
    const urls = task.photos.map((link) => link.photo.url);
    const finishing = task.attempts.filter((run) => run.outcome === "SUCCESS" || run.outcome === "FAILURE").length;
    if (task.state !== "SUCCESS") problems.push(`${task.id.slice(0, 8)} ${task.state} ${task.error ?? ""}`);
    else if (finishing !== 1) problems.push(`${task.id.slice(0, 8)} finished by ${finishing} runs`);
    else if (new Set(urls).size !== urls.length || urls.length !== task.limit || task.photoCount !== task.limit)
      problems.push(`${task.id.slice(0, 8)} has ${urls.length} links (${new Set(urls).size} distinct) for a limit of ${task.limit}`);
  }
  return { tasks, problems };
}

async function settle(db: Db, ids: string[], timeoutMs: number): Promise<boolean> {
  const done = async () => (await db.task.count({ where: { id: { in: ids }, state: { in: ["SUCCESS", "FAILURE"] } } })) === ids.length;
  return waitFor(`${ids.length} tasks to finish`, done, timeoutMs).then(
    () => true,
    () => false,
  );
}

describe("when the connection between a worker and PostgreSQL is reset again and again under load", { skip: onlyPostgres }, () => {
  const CUTS = 8;
  let fake: FakeDogApi;
  let stack: Stack;
  let proxy: TcpProxy;
  let worker: ChildApp | undefined;
  before(async () => {
    // A little latency spreads each job's claim and result apart, so resets find transactions open.
    fake = await startFakeDogApi({ latencyMs: 150 });
    stack = await startStack({ workers: 0, fake, env: { RECOVERY_GRACE_MS: "3000" } });
    proxy = await startTcpProxy(postgresPort(stack.config.databaseUrl));
  });
  after(async () => {
    await worker?.stop();
    await proxy?.close();
    await stack?.stop();
    await fake?.close();
  });

  test("then the worker logs it, keeps running, and every task ends SUCCESS once", { timeout: 150_000 }, async () => {
    worker = spawnWorker(configEnv(stack.config, { DATABASE_URL: proxiedUrl(stack.config.databaseUrl, proxy), WORKER_CONCURRENCY: "64" }));
    await worker.waitForOutput(/worker started/, 30_000);

    const ids: string[] = [];
    const submit = async (i: number) => {
      const res = await stack
        .http()
        .post("/api/tasks")
        .send({ breed: BREEDS[i % BREEDS.length], limit: 1 + (i % 4) });
      assert.equal(res.status, 202, res.text);
      ids.push(res.body.id as string);
    };
    // 100 jobs in bursts, each followed by a reset while its claims and results are being written.
    for (let cut = 0; cut < CUTS; cut++) {
      await Promise.all(Array.from({ length: cut < 4 ? 13 : 12 }, (_, k) => submit(ids.length + k)));
      await sleep(100 + 40 * cut);
      await proxy.cut();
      await sleep(700);
      await proxy.restore();
      assert.ok(isAlive(worker), `the worker died at reset ${cut + 1}:\n${worker.output().slice(-3000)}`);
      await sleep(300);
    }
    assert.equal(ids.length, 100);

    const settled = await settle(stack.db, ids, 60_000);
    const { problems } = await audit(stack.db, ids);
    assert.ok(isAlive(worker), `the worker died:\n${worker.output().slice(-3000)}`);
    assert.ok(settled, `not every task finished: ${problems.join("; ")}\n${worker.output().slice(-3000)}`);
    assert.deepEqual(problems, []);
    assert.match(worker.output(), /Connection terminated|ECONNRESET|database/i, "the worker said what happened");
    assert.doesNotMatch(worker.output(), /Unhandled 'error' event/);
    assert.equal(await queueDepth(stack.config.queueName), 0);
    console.log(`postgres resets: cuts=${CUTS}, jobs=100, proxy connections=${proxy.connections}, runs=${await stack.db.attempt.count({ where: { taskId: { in: ids } } })}`);
  });
});
