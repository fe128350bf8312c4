// The database as a flaky network shows it: PostgreSQL behind a TCP proxy of the test's own
// (the machine's server is never touched) reset under load, cut for seconds, or silent.
// The processes must keep running, answer clearly while it is away, and lose or double no
// job. On SQLite the "silent database" is a write lock another connection holds.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import Database from "better-sqlite3";
import { databaseFile } from "../lib/platform/config.ts";
import type { Db } from "../lib/store/db.ts";
import { onPostgres } from "./support/database.ts";
import {
  configEnv,
  freePort,
  spawnWeb,
  spawnWorker,
  startTcpProxy,
  type ChildApp,
  type TcpProxy,
} from "./support/faults.ts";
import { csrfTokenFrom, queueDepth, startStack, waitFor, type Stack } from "./support/stack.ts";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";

const BREEDS = ["hound/afghan", "bulldog/french", "pug", "husky", "beagle", "akita", "boxer", "collie/border"];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const onlyPostgres = onPostgres
  ? false
  : "PostgreSQL only (TEST_DATABASE=postgres): SQLite is a file, there is no connection to cut";

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
      problems.push(
        `${task.id.slice(0, 8)} has ${urls.length} links (${new Set(urls).size} distinct) for a limit of ${task.limit}`,
      );
  }
  return { tasks, problems };
}

async function settle(db: Db, ids: string[], timeoutMs: number): Promise<boolean> {
  const done = async () =>
    (await db.task.count({ where: { id: { in: ids }, state: { in: ["SUCCESS", "FAILURE"] } } })) === ids.length;
  return waitFor(`${ids.length} tasks to finish`, done, timeoutMs).then(
    () => true,
    () => false,
  );
}

/** One request on its own connection; fails if no answer comes within timeoutMs (a hang, not a slow answer). */
function httpRequest(
  url: string,
  opts: { method?: string; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
) {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? "GET", agent: false, headers: opts.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`no answer from ${opts.method ?? "GET"} ${url} within ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const postJson = (url: string, body: unknown) =>
  httpRequest(url, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

/** The home page's form sent as a browser sends it: a CSRF token and its cookies from GET /. */
async function postForm(base: string, fields: Record<string, string>) {
  const home = await httpRequest(`${base}/`);
  assert.equal(home.status, 200, home.body.slice(0, 500));
  const cookie = (home.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]).join("; ");
  const body = new URLSearchParams({ ...fields, _csrf: csrfTokenFrom(home.body) }).toString();
  return () =>
    httpRequest(`${base}/tasks`, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    });
}

/** A 503 that says when to come back, with the form as it was sent. */
function assertFormKept(
  res: { status: number; headers: http.IncomingHttpHeaders; body: string },
  breed: string,
  limit: string,
) {
  assert.equal(res.status, 503, res.body.slice(0, 500));
  assert.ok(Number(res.headers["retry-after"]) > 0, `Retry-After: ${res.headers["retry-after"]}`);
  assert.match(res.body, /database is not answering/);
  assert.match(res.body, new RegExp(`<option value="${breed}" selected>`));
  assert.match(res.body, new RegExp(`name="limit" id="limit"[^>]*value="${limit}"`));
  assert.match(res.body, /name="_csrf"/, "the form can be sent again");
  assert.doesNotMatch(res.body, /^\s+at /m, "no stack trace");
}

describe(
  "when the connection between a worker and PostgreSQL is reset again and again under load",
  { skip: onlyPostgres },
  () => {
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
      worker = spawnWorker(
        configEnv(stack.config, {
          DATABASE_URL: proxiedUrl(stack.config.databaseUrl, proxy),
          WORKER_CONCURRENCY: "64",
        }),
      );
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
      console.log(
        `postgres resets: cuts=${CUTS}, jobs=100, proxy connections=${proxy.connections}, runs=${await stack.db.attempt.count({ where: { taskId: { in: ids } } })}`,
      );
    });
  },
);

describe("when PostgreSQL goes silent (the link stalls, nothing is cut)", { skip: onlyPostgres }, () => {
  let stack: Stack;
  let proxy: TcpProxy;
  let web: (ChildApp & { url: string }) | undefined;
  before(async () => {
    stack = await startStack({ workers: 1, web: false });
    proxy = await startTcpProxy(postgresPort(stack.config.databaseUrl));
  });
  after(async () => {
    proxy?.resume();
    await web?.stop();
    await proxy?.close();
    await stack?.stop();
  });

  test(
    "then /readyz and submits answer 503 with Retry-After within the time limit, and nothing half-written is left",
    { timeout: 120_000 },
    async () => {
      const port = await freePort();
      web = spawnWeb(
        configEnv(stack.config, {
          PORT: String(port),
          DATABASE_URL: proxiedUrl(stack.config.databaseUrl, proxy),
          DATABASE_TIMEOUT_MS: "1500",
        }),
      );
      await waitFor(
        "the web to be ready",
        () =>
          httpRequest(`${web!.url}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          ),
        30_000,
      );
      const first = await postJson(`${web.url}/api/tasks`, { breed: "pug", limit: 2 });
      assert.equal(first.status, 202, first.body);
      const sendForm = await postForm(web.url, { breed: "hound/afghan", limit: "7" });

      proxy.stall();
      try {
        // Each must answer on its own (httpRequest gives up after 20 s): before, each waited for the stall to end.
        const [ready, api, form] = await Promise.all([
          httpRequest(`${web.url}/readyz`),
          postJson(`${web.url}/api/tasks`, { breed: "husky", limit: 3 }),
          sendForm(),
        ]);
        assert.equal(ready.status, 503, ready.body);
        assert.deepEqual(JSON.parse(ready.body), {
          status: "unavailable",
          database: false,
          broker: true,
          down: ["database"],
        });
        assert.ok(Number(ready.headers["retry-after"]) > 0);
        assert.equal(api.status, 503, api.body);
        assert.ok(Number(api.headers["retry-after"]) > 0);
        const error = (JSON.parse(api.body) as { error: { code: string; retryAfterSeconds: number } }).error;
        assert.equal(error.code, "database_unavailable");
        assert.equal(error.retryAfterSeconds, Number(api.headers["retry-after"]));
        assertFormKept(form, "hound/afghan", "7");
      } finally {
        proxy.resume();
      }

      await waitFor(
        "the web to be ready again",
        () =>
          httpRequest(`${web!.url}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          ),
        30_000,
      );
      const again = await postJson(`${web.url}/api/tasks`, { breed: "husky", limit: 3 });
      assert.equal(again.status, 202, again.body);
      // A refused submit's statement may still reach the database once the link resumes (the
      // answer says the task may not have been saved): such a task runs like any other, with
      // its job; nothing is left half-written. The lease on its job runs out after 30 s.
      const tasks = await stack.db.task.findMany();
      const ids = tasks.map((t) => t.id);
      for (const id of [JSON.parse(first.body).id, JSON.parse(again.body).id]) assert.ok(ids.includes(id));
      assert.ok(tasks.length <= 4, `${tasks.length} tasks`);
      assert.equal(await stack.db.outboxMessage.count(), tasks.length, "one job for each task");
      assert.ok(
        await settle(
          stack.db,
          tasks.map((t) => t.id),
          60_000,
        ),
      );
      assert.ok(isAlive(web));
    },
  );
});

describe(
  "when SQLite's write lock is held by another connection",
  { skip: onPostgres ? "SQLite only: PostgreSQL's silent database is the stalled link above" : false },
  () => {
    let stack: Stack;
    before(async () => {
      stack = await startStack({ workers: 0 });
    });
    after(async () => {
      await stack?.stop();
    });

    test("then a submit answers 503 with Retry-After after the busy wait, the form kept, and /readyz still reads", async () => {
      await waitFor(
        "the web to reach RabbitMQ",
        async () => (await stack.http().get("/readyz")).status === 200,
        20_000,
      );
      const agent = stack.agent();
      const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
      const holder = new Database(databaseFile(stack.config.databaseUrl));
      holder.exec("BEGIN IMMEDIATE");
      try {
        const [api, form, ready] = await Promise.all([
          stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }),
          agent.post("/tasks").type("form").send({ breed: "hound/afghan", limit: "7", _csrf: token }),
          stack.http().get("/readyz"),
        ]);
        assert.equal(api.status, 503, api.text);
        assert.equal(api.body.error.code, "database_unavailable");
        assert.ok(Number(api.headers["retry-after"]) > 0);
        assertFormKept({ status: form.status, headers: form.headers, body: form.text }, "hound/afghan", "7");
        // WAL readers never wait for a writer: the database answers, only writes must wait.
        assert.equal(ready.status, 200, ready.text);
      } finally {
        holder.exec("ROLLBACK");
        holder.close();
      }
      assert.equal(await stack.db.task.count(), 0);
      const res = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 });
      assert.equal(res.status, 202, res.text);
    });
  },
);

describe("when PostgreSQL goes away for 15 s under load and comes back", { skip: onlyPostgres }, () => {
  const CUT_MS = 15_000;
  let fake: FakeDogApi;
  let stack: Stack;
  let proxy: TcpProxy;
  const children: ChildApp[] = [];
  before(async () => {
    // Jobs take a second at dog.ceo, so many are in a worker's hands when the database goes.
    fake = await startFakeDogApi({ latencyMs: 1000 });
    stack = await startStack({
      workers: 0,
      web: false,
      fake,
      env: { RECOVERY_GRACE_MS: "3000", DATABASE_TIMEOUT_MS: "2000" },
    });
    proxy = await startTcpProxy(postgresPort(stack.config.databaseUrl));
  });
  after(async () => {
    for (const child of children) await child.stop();
    await proxy?.close();
    await stack?.stop();
    await fake?.close();
  });

  test(
    "then submits get 503 with Retry-After meanwhile, /readyz says so, and every accepted task ends SUCCESS once, with no restart",
    { timeout: 180_000 },
    async () => {
      const databaseUrl = proxiedUrl(stack.config.databaseUrl, proxy);
      const web = spawnWeb(configEnv(stack.config, { PORT: String(await freePort()), DATABASE_URL: databaseUrl }));
      const worker = spawnWorker(configEnv(stack.config, { DATABASE_URL: databaseUrl, WORKER_CONCURRENCY: "32" }));
      children.push(web, worker);
      await worker.waitForOutput(/worker started/, 30_000);
      await waitFor(
        "the web to be ready",
        () =>
          httpRequest(`${web.url}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          ),
        30_000,
      );
      const sendForm = await postForm(web.url, { breed: "beagle", limit: "4" });

      // Four clients submit all along, before, during and after the cut (bounded in count).
      const accepted: { id: string; phase: string }[] = [];
      const refused = { before: 0, during: 0, after: 0 };
      const unexpected: string[] = [];
      let phase: "before" | "during" | "after" = "before";
      let stop = false;
      const load = Promise.all(
        Array.from({ length: 4 }, async (_, client) => {
          for (let i = 0; i < 200 && !stop; i++) {
            const res = await postJson(`${web.url}/api/tasks`, {
              breed: BREEDS[(client + i) % BREEDS.length],
              limit: 1 + (i % 4),
            }).catch((err: Error) => ({
              status: 0,
              headers: {} as http.IncomingHttpHeaders,
              body: err.message,
            }));
            if (res.status === 202) accepted.push({ id: (JSON.parse(res.body) as { id: string }).id, phase });
            else if (
              res.status === 503 &&
              Number(res.headers["retry-after"]) > 0 &&
              /database_unavailable/.test(res.body)
            )
              refused[phase] += 1;
            else unexpected.push(`${phase}: ${res.status} ${res.body.slice(0, 200)}`);
            await sleep(200);
          }
        }),
      );

      await waitFor(
        "tasks to succeed before the cut",
        async () => (await stack.db.task.count({ where: { state: "SUCCESS" } })) >= 20,
        30_000,
      );
      await proxy.cut();
      phase = "during";
      const cutAt = Date.now();
      const ready = await waitFor("/readyz to say the database is down", async () => {
        const res = await httpRequest(`${web.url}/readyz`);
        return res.status === 503 ? res : undefined;
      });
      assert.deepEqual(JSON.parse(ready.body).down, ["database"]);
      assert.ok(Number(ready.headers["retry-after"]) > 0);
      const api = await postJson(`${web.url}/api/tasks`, { breed: "pug", limit: 2 });
      assert.equal(api.status, 503, api.body);
      assert.ok(Number(api.headers["retry-after"]) > 0);
      assertFormKept(await sendForm(), "beagle", "4");
      await sleep(Math.max(0, CUT_MS - (Date.now() - cutAt)));
      assert.ok(isAlive(web) && isAlive(worker), "web and worker ran through the cut");

      await proxy.restore();
      phase = "after";
      const restoredAt = new Date();
      await waitFor(
        "/readyz to say ready again",
        () =>
          httpRequest(`${web.url}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          ),
        30_000,
      );
      await waitFor(
        "tasks submitted after the cut",
        () => accepted.filter((t) => t.phase === "after").length >= 20,
        30_000,
      );
      stop = true;
      await load;

      const ids = accepted.map((t) => t.id);
      const settled = await settle(stack.db, ids, 90_000);
      const { problems } = await audit(stack.db, ids);
      assert.ok(
        settled,
        `not every task finished: ${problems.slice(0, 20).join("; ")}\n${worker.output().slice(-3000)}`,
      );
      assert.deepEqual(problems, []);
      assert.deepEqual(unexpected, [], "every submit was accepted or refused with 503 and Retry-After");
      assert.ok(refused.during > 0, "submits during the cut were refused");
      // A refused submit whose COMMIT went through with only its answer lost left a task: it
      // runs too (once the web's lease on its job runs out, 30 s), like every other.
      const all = (await stack.db.task.findMany({ select: { id: true } })).map((t) => t.id);
      assert.ok(await settle(stack.db, all, 90_000), "every task in the database finished");
      assert.deepEqual((await audit(stack.db, all)).problems, []);
      await waitFor(
        "the outbox to be empty",
        async () => (await stack.db.outboxMessage.count({ where: { sentAt: null } })) === 0,
        30_000,
      );
      assert.equal(await queueDepth(stack.config.queueName), 0);
      // No restart: the same two processes, the worker's heartbeats written again.
      assert.ok(isAlive(web) && isAlive(worker), "web and worker still the same processes");
      await waitFor(
        "the worker's heartbeat after the cut",
        async () => (await stack.db.worker.findFirst({ where: { lastSeenAt: { gt: restoredAt } } })) !== null,
        15_000,
      );
      const counts = Object.fromEntries(
        ["before", "during", "after"].map((p) => [p, accepted.filter((t) => t.phase === p).length]),
      );
      console.log(
        `postgres away ${CUT_MS / 1000} s: accepted before/during/after=${counts.before}/${counts.during}/${counts.after} (+${all.length - ids.length} refused but saved), refused 503 before/during/after=${refused.before}/${refused.during}/${refused.after}, runs=${await stack.db.attempt.count({ where: { taskId: { in: ids } } })}, lost runs=${await stack.db.attempt.count({ where: { taskId: { in: ids }, outcome: "LOST" } })}`,
      );
    },
  );
});
