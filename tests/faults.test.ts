// Reliability under faults, on the real parts: RabbitMQ connections cut by a proxy of our
// own (the machine's broker is never touched), workers killed or stopped mid-job, and a
// misbehaving dog.ceo. Every job must end SUCCESS or FAILURE, none lost, none doubled.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import amqplib from "amqplib";
import type { Db } from "../lib/store/db.ts";
import type { TaskState } from "../lib/lifecycle/shapes.ts";
import {
  configEnv,
  freePort,
  injectedFaults,
  spawnWeb,
  spawnWorker,
  startTcpProxy,
  type ChildApp,
  type TcpProxy,
} from "./support/faults.ts";
import { AMQP_URL, csrfTokenFrom, queueDepth, startStack, waitFor, type Stack } from "./support/stack.ts";

const BREEDS = [
  "hound/afghan",
  "bulldog/french",
  "pug",
  "husky",
  "beagle",
  "akita",
  "boxer",
  "collie/border",
  "terrier/scottish",
  "retriever/golden",
];
const FINISHED: TaskState[] = ["SUCCESS", "FAILURE"];

const summary = { jobs: 0, brokerCuts: 0, workerKills: 0, faultsInjected: 0, lost: 0, duplicated: 0 };

after(() => {
  console.log(
    `fault summary: jobs submitted=${summary.jobs}, broker cuts=${summary.brokerCuts}, worker kills=${summary.workerKills}, ` +
      `dog.ceo faults injected=${summary.faultsInjected}, lost=${summary.lost}, duplicated=${summary.duplicated}`,
  );
});

const broker = new URL(AMQP_URL);
const brokerPort = Number(broker.port || 5672);

function proxiedAmqpUrl(proxy: TcpProxy): string {
  const url = new URL(AMQP_URL);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  return url.toString();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Submits a task through the JSON API, as a script or the page's JavaScript would. */
async function submitApi(stack: Stack, i: number, limit = 1 + (i % 5)) {
  const breed = BREEDS[i % BREEDS.length]!;
  const res = await stack.http().post("/api/tasks").send({ breed, limit });
  assert.equal(res.status, 202, `POST /api/tasks answered ${res.status}: ${res.text}`);
  summary.jobs += 1;
  return res.body as { id: string; state: string; queued: boolean; waitingForQueue: boolean; limit: number };
}

async function submitMany(stack: Stack, count: number, from = 0) {
  const tasks = [];
  for (let i = from; i < from + count; i++) tasks.push(await submitApi(stack, i));
  return tasks;
}

/** Counted 500 ids at a time: SQLite takes at most 999 parameters in one query. */
async function finishedCount(db: Db, ids: string[]): Promise<number> {
  let finished = 0;
  for (let i = 0; i < ids.length; i += 500)
    finished += await db.task.count({ where: { id: { in: ids.slice(i, i + 500) }, state: { in: FINISHED } } });
  return finished;
}

/** Waits (bounded) for every task to finish; reports rather than throws, so the audit still runs. */
async function settle(db: Db, ids: string[], timeoutMs: number): Promise<boolean> {
  return waitFor(
    `${ids.length} tasks to finish`,
    async () => (await finishedCount(db, ids)) === ids.length,
    timeoutMs,
  ).then(
    () => true,
    () => false,
  );
}

/**
 * Counts tasks not finished (lost), and tasks finished by more than one run or whose photo links are doubled or
 * miscounted (duplicated).
 */
async function audit(db: Db, ids: string[]) {
  const tasks = await db.task.findMany({
    where: { id: { in: ids } },
    include: {
      photos: { include: { photo: true }, orderBy: { position: "asc" } },
      attempts: { orderBy: { id: "asc" } },
    },
  });
  let lost = ids.length - tasks.length;
  let duplicated = 0;
  for (const task of tasks) {
    if (!FINISHED.includes(task.state)) lost += 1;
    const urls = task.photos.map((link) => link.photo.url);
    const positions = new Set(task.photos.map((link) => link.position));
    const doubled = new Set(urls).size !== urls.length || positions.size !== urls.length;
    const miscounted = task.state === "SUCCESS" && (urls.length !== task.limit || task.photoCount !== task.limit);
    // Exactly one result: one run finished the task, whatever was redelivered or duplicated.
    const finishingRuns = task.attempts.filter((run) => run.outcome === "SUCCESS" || run.outcome === "FAILURE").length;
    const ranTwice = FINISHED.includes(task.state) && task.state !== "REVOKED" && finishingRuns !== 1;
    if (doubled || miscounted || ranTwice) duplicated += 1;
  }
  summary.lost += lost;
  summary.duplicated += duplicated;
  return { tasks, lost, duplicated };
}

function describeTasks(
  tasks: { id: string; state: string; limit: number; photoCount: number; error: string | null }[],
): string {
  return tasks.map((t) => `${t.id.slice(0, 8)} ${t.state} ${t.photoCount}/${t.limit} ${t.error ?? ""}`).join("\n");
}

/** Takes every message off a queue (the stack is deleted afterwards anyway). */
async function takeAll(queue: string): Promise<Buffer[]> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    const bodies: Buffer[] = [];
    for (;;) {
      const msg = await channel.get(queue, { noAck: true });
      if (!msg) return bodies;
      bodies.push(msg.content);
    }
  } finally {
    await connection.close().catch(() => {});
  }
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

function isAlive(app: ChildApp): boolean {
  return app.child.exitCode === null && app.child.signalCode === null;
}

describe("when the connection to RabbitMQ drops and comes back", () => {
  let proxy: TcpProxy;
  let stack: Stack;
  before(async () => {
    proxy = await startTcpProxy(brokerPort, broker.hostname);
    stack = await startStack({ workers: 1, env: { AMQP_URL: proxiedAmqpUrl(proxy), PUBLISH_WAIT_MS: "1000" } });
  });
  after(async () => {
    await proxy?.restore();
    await stack?.stop();
    await proxy?.close();
  });

  test("then tasks submitted before, during and after the cut all succeed once, and people get their task meanwhile", async () => {
    await waitFor("the web to reach RabbitMQ", async () => (await stack.http().get("/readyz")).status === 200, 20_000);
    // Two slow answers keep jobs in a worker's hands when the connection goes.
    stack.fake.failNext("slow", 2, { delayMs: 1500 });
    const beforeCut = await submitMany(stack, 5, 0);
    assert.ok(
      beforeCut.every((t) => t.queued),
      "with the broker up, tasks are queued at once",
    );
    await waitFor(
      "some tasks to finish before the cut",
      () => stack.db.task.count({ where: { id: { in: beforeCut.map((t) => t.id) }, state: "SUCCESS" } }),
      20_000,
    );

    await proxy.cut();
    summary.brokerCuts += 1;
    const ready = await waitFor(
      "/readyz to notice the broker is gone",
      async () => {
        const res = await stack.http().get("/readyz");
        return res.status === 503 ? res : undefined;
      },
      5000,
    );
    assert.equal(ready.body.broker, false);
    assert.deepEqual(ready.body.down, ["broker"]);

    const during = await Promise.all([5, 6, 7, 8].map((i) => submitApi(stack, i)));
    for (const task of during) {
      assert.equal(task.queued, false);
      assert.equal(task.state, "PENDING");
      assert.equal(task.waitingForQueue, true);
    }
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const form = await agent.post("/tasks").type("form").send({ breed: "hound/basset", limit: "4", _csrf: token });
    assert.equal(form.status, 303, form.text);
    summary.jobs += 1;
    const formTaskId = new URL(form.headers.location!, "http://x").searchParams.get("submitted")!;
    const flash = await agent.get(form.headers.location!).expect(200);
    assert.match(flash.text, /waiting for the job queue/);
    assert.equal(
      await stack.db.outboxMessage.count({ where: { sentAt: null } }),
      5,
      "the five tasks wait in the outbox",
    );

    await proxy.restore();
    const afterCut = await submitMany(stack, 5, 10);

    const ids = [...beforeCut, ...during, ...afterCut].map((t) => t.id).concat(formTaskId);
    assert.equal(ids.length, 15);
    const settled = await settle(stack.db, ids, 45_000);
    const { tasks, lost, duplicated } = await audit(stack.db, ids);
    assert.ok(settled, `not every task finished:\n${describeTasks(tasks)}`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, describeTasks(tasks));
    assert.ok(
      tasks.every((t) => t.state === "SUCCESS"),
      describeTasks(tasks),
    );
    for (const task of tasks) assert.equal(task.photos.length, task.limit);
    assert.equal(await stack.db.outboxMessage.count({ where: { sentAt: null } }), 0, "every outbox message was sent");
    assert.equal(await stack.db.outboxMessage.count({ where: { taskId: { in: ids } } }), 15);
    assert.equal(await queueDepth(stack.config.queueName), 0);
    assert.ok(
      proxy.connections >= 4,
      `the web and the worker reconnected (proxy saw ${proxy.connections} connections)`,
    );
  });
});

describe("when a worker is killed with SIGKILL mid-batch", () => {
  let stack: Stack;
  const children: ChildApp[] = [];
  before(async () => {
    // A dog.ceo timeout longer than the slow answers, so the jobs are in hand, not retrying.
    stack = await startStack({ workers: 0, env: { DOG_API_TIMEOUT_MS: "15000" } });
  });
  after(async () => {
    for (const child of children) await child.stop();
    await stack?.stop();
  });

  test("then another worker finishes every task exactly once, and the killed runs are recorded as LOST", async () => {
    // Slow answers keep four jobs in the first worker's hands.
    stack.fake.failNext("slow", 100, { delayMs: 10_000 });
    const first = spawnWorker(configEnv(stack.config, { WORKER_CONCURRENCY: "4" }));
    children.push(first);
    await first.waitForOutput(/connected to RabbitMQ/, 30_000);

    const submitted = await submitMany(stack, 12, 0);
    const ids = submitted.map((t) => t.id);
    await waitFor(
      "four tasks to be STARTED",
      async () => (await stack.db.task.count({ where: { id: { in: ids }, state: "STARTED" } })) >= 4,
      20_000,
    );
    first.kill("SIGKILL");
    const exit = await first.exited;
    assert.equal(exit.signal, "SIGKILL");
    summary.workerKills += 1;
    summary.faultsInjected += stack.fake.requests; // every answer so far was a slow one

    const killedRuns = await stack.db.attempt.findMany({
      where: { taskId: { in: ids }, workerId: { contains: `-${first.pid}-` } },
    });
    const interrupted = new Set(killedRuns.filter((run) => run.outcome === null).map((run) => run.taskId));
    assert.ok(interrupted.size >= 1, "the killed worker had jobs in hand");

    stack.fake.clearFaults();
    const second = spawnWorker(configEnv(stack.config, { WORKER_CONCURRENCY: "4" }));
    children.push(second);

    const settled = await settle(stack.db, ids, 45_000);
    const { tasks, lost, duplicated } = await audit(stack.db, ids);
    assert.ok(settled, `not every task finished:\n${describeTasks(tasks)}\n${second.output()}`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, describeTasks(tasks));
    assert.ok(
      tasks.every((t) => t.state === "SUCCESS"),
      describeTasks(tasks),
    );
    for (const task of tasks) {
      assert.equal(task.photos.length, task.limit);
      if (!interrupted.has(task.id)) continue;
      const outcomes = task.attempts.map(
        (run) => `${run.outcome}@${run.workerId.includes(`-${first.pid}-`) ? "killed" : "other"}`,
      );
      const lostAt = outcomes.indexOf("LOST@killed");
      assert.ok(lostAt >= 0, `task ${task.id}: ${outcomes.join(", ")}`);
      assert.ok(outcomes.slice(lostAt + 1).includes("SUCCESS@other"), `task ${task.id}: ${outcomes.join(", ")}`);
    }
    assert.equal(await stack.db.attempt.count({ where: { taskId: { in: ids }, outcome: null } }), 0);
    assert.equal(await queueDepth(stack.config.queueName), 0);
  });
});

describe("when 1,000 jobs arrive from 10 clients at once while a worker is killed, a broker link is cut and dog.ceo fails at random", () => {
  const rates = { http500: 0.05, slow: 0.02 };
  let stack: Stack;
  let proxy: TcpProxy;
  const children: ChildApp[] = [];
  before(async () => {
    proxy = await startTcpProxy(brokerPort, broker.hostname);
    stack = await startStack({ workers: 0, env: { DOG_API_TIMEOUT_MS: "1500", RECOVERY_GRACE_MS: "3000" } });
  });
  after(async () => {
    for (const child of children) await child.stop();
    await proxy?.restore();
    await stack?.stop();
    await proxy?.close();
  });

  test("then every task ends SUCCESS or FAILURE, none lost and none finished twice", { timeout: 150_000 }, async () => {
    stack.fake.setFaultRate(rates, 7);
    const direct = spawnWorker(configEnv(stack.config));
    const proxied = spawnWorker(configEnv(stack.config, { AMQP_URL: proxiedAmqpUrl(proxy) }));
    children.push(direct, proxied);
    await Promise.all([direct, proxied].map((w) => w.waitForOutput(/connected to RabbitMQ/, 30_000)));

    const ids: string[] = [];
    const succeeded = () => stack.db.task.count({ where: { state: "SUCCESS" } });
    const faults = (async () => {
      await waitFor("300 tasks to succeed", async () => (await succeeded()) >= 300, 60_000);
      direct.kill("SIGKILL");
      summary.workerKills += 1;
      children.push(spawnWorker(configEnv(stack.config)));
      await waitFor("500 tasks to succeed", async () => (await succeeded()) >= 500, 60_000);
      await proxy.cut();
      summary.brokerCuts += 1;
      await sleep(1000);
      await proxy.restore();
    })();
    await Promise.all(
      Array.from({ length: 10 }, async (_, client) => {
        for (let i = 0; i < 100; i++) ids.push((await submitApi(stack, client * 100 + i, 10)).id);
      }),
    );
    await faults;

    const settled = await settle(stack.db, ids, 90_000);
    const { tasks, lost, duplicated } = await audit(stack.db, ids);
    assert.ok(settled, `not every task finished:\n${describeTasks(tasks.filter((t) => !FINISHED.includes(t.state)))}`);
    assert.equal(ids.length, 1000);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, describeTasks(tasks));
    const requests = stack.fake.requests;
    const injected = Object.values(injectedFaults(rates, 7, requests)).reduce((a, b) => a + b, 0);
    summary.faultsInjected += injected;
    const lostRuns = tasks.flatMap((t) => t.attempts).filter((r) => r.outcome === "LOST").length;
    console.log(
      `faults at load: jobs=1000, dog.ceo requests=${requests}, faults injected=${injected}, runs lost to the kill=${lostRuns}, lost=${lost}, duplicated=${duplicated}`,
    );
  });
});

describe("when dog.ceo misbehaves at random", () => {
  const rates = { http500: 0.2, hang: 0.05, badJson: 0.1, truncated: 0.1, slow: 0.1 };
  const seed = 20240611;
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      workers: 2,
      env: { DOG_API_TIMEOUT_MS: "1000", RETRY_MAX_ATTEMPTS: "5", RETRY_BASE_MS: "50", RETRY_MAX_MS: "300" },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  test("then every task ends SUCCESS with its photos, or FAILURE after five attempts in the dead-letter queue", async () => {
    stack.fake.setFaultRate(rates, seed);
    const submitted = await submitMany(stack, 30, 0);
    const ids = submitted.map((t) => t.id);

    const settled = await settle(stack.db, ids, 90_000);
    const { tasks, lost, duplicated } = await audit(stack.db, ids);
    assert.ok(settled, `not every task finished:\n${describeTasks(tasks.filter((t) => !FINISHED.includes(t.state)))}`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, describeTasks(tasks));

    const succeeded = tasks.filter((t) => t.state === "SUCCESS");
    const failed = tasks.filter((t) => t.state === "FAILURE");
    for (const task of succeeded) assert.equal(task.photos.length, task.limit);
    for (const task of failed) {
      assert.match(task.error ?? "", /^gave up after 5 attempts: /);
      assert.equal(task.attempts.length, 5);
    }
    const deadQueue = `${stack.config.queueName}.dead`;
    await waitFor(
      "the failed jobs to reach the dead-letter queue",
      async () => (await queueDepth(deadQueue)) === failed.length,
      10_000,
    );
    const dead = (await takeAll(deadQueue)).map((body) => (JSON.parse(body.toString()) as { taskId: string }).taskId);
    assert.deepEqual(dead.sort(), failed.map((t) => t.id).sort());

    const requests = stack.fake.requests;
    const faults = injectedFaults(rates, seed, requests);
    const hardFaults = faults.http500 + faults.hang + faults.badJson + faults.truncated;
    const runs = tasks.flatMap((t) => t.attempts);
    const retries = runs.filter((r) => r.outcome === "RETRY").length;
    const failedRuns = retries + runs.filter((r) => r.outcome === "FAILURE").length;
    assert.equal(runs.filter((r) => r.outcome === "LOST" || r.outcome === null).length, 0);
    // Every request the stand-in counted was one attempt, and every hard fault one failed attempt
    // (not "equal": on a loaded machine a healthy answer may also miss the 1 s timeout).
    assert.ok(runs.length >= requests, `${runs.length} attempts for ${requests} requests`);
    assert.ok(failedRuns >= hardFaults, `failed attempts ${failedRuns}, hard faults ${hardFaults}`);
    assert.ok(hardFaults > 0 && retries > 0, "faults were injected and retried");
    assert.equal(await queueDepth(stack.config.queueName), 0);

    const totalFaults = Object.values(faults).reduce((a, b) => a + b, 0);
    summary.faultsInjected += totalFaults;
    console.log(
      `dog.ceo faults: jobs=${ids.length}, requests=${requests}, faults injected=${totalFaults} ` +
        `(${Object.entries(faults)
          .map(([kind, n]) => `${kind} ${n}`)
          .join(", ")}), retries=${retries}, ` +
        `success=${succeeded.length}, failure=${failed.length}, lost=${lost}, duplicated=${duplicated}`,
    );
  });
});

describe("when a worker or the web is asked to stop with SIGTERM", () => {
  const shutdownTimeoutMs = 8000;
  let stack: Stack;
  const children: ChildApp[] = [];
  before(async () => {
    stack = await startStack({
      workers: 0,
      env: { SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs), DOG_API_TIMEOUT_MS: "5000" },
    });
  });
  after(async () => {
    for (const child of children) await child.stop();
    await stack?.stop();
  });

  test("then the worker finishes and acknowledges the jobs in hand, and exits 0", async () => {
    stack.fake.failNext("slow", 4, { delayMs: 3000 });
    const worker = spawnWorker(configEnv(stack.config, { WORKER_CONCURRENCY: "4" }));
    children.push(worker);
    await worker.waitForOutput(/connected to RabbitMQ/, 30_000);

    const ids = (await submitMany(stack, 4, 0)).map((t) => t.id);
    await waitFor(
      "all four tasks to be STARTED",
      async () => (await stack.db.task.count({ where: { id: { in: ids }, state: "STARTED" } })) === 4,
      20_000,
    );
    worker.kill("SIGTERM");
    // A bound on the wait, not a claim about speed: the claim is what the worker says below.
    const exit = await Promise.race([worker.exited, sleep(shutdownTimeoutMs + 30_000).then(() => undefined)]);
    assert.ok(exit, `the worker did not exit:\n${worker.output()}`);
    assert.deepEqual(exit, { code: 0, signal: null }, worker.output());
    // It stopped because the jobs were done, not because the shutdown timeout ran out.
    assert.doesNotMatch(worker.output(), /jobs still running at the shutdown timeout/);
    assert.match(worker.output(), /worker stopped/);
    summary.faultsInjected += Math.min(stack.fake.requests, 4);

    const { tasks, lost, duplicated } = await audit(stack.db, ids);
    assert.equal(lost, 0, describeTasks(tasks));
    assert.equal(duplicated, 0, describeTasks(tasks));
    assert.ok(
      tasks.every((t) => t.state === "SUCCESS"),
      describeTasks(tasks),
    );
    for (const task of tasks)
      assert.deepEqual(
        task.attempts.map((r) => r.outcome),
        ["SUCCESS"],
      );
    // Acked before the connection closed: nothing was handed back for redelivery.
    assert.equal(await queueDepth(stack.config.queueName), 0);
  });

  test("then a second signal exits at once, and the jobs it dropped run again on another worker", async () => {
    stack.fake.failNext("slow", 3, { delayMs: 10_000 });
    const impatient = spawnWorker(configEnv(stack.config, { WORKER_CONCURRENCY: "3" }));
    children.push(impatient);
    await impatient.waitForOutput(/connected to RabbitMQ/, 30_000);
    const ids = (await submitMany(stack, 3, 0)).map((t) => t.id);
    await waitFor(
      "all three tasks to be STARTED",
      async () => (await stack.db.task.count({ where: { id: { in: ids }, state: "STARTED" } })) === 3,
      20_000,
    );

    impatient.kill("SIGTERM");
    await impatient.waitForOutput(/shutting down/, 10_000);
    impatient.kill("SIGINT");
    const exit = await Promise.race([impatient.exited, sleep(30_000).then(() => undefined)]);
    assert.ok(exit && exit.code === 130, `exit ${JSON.stringify(exit)}:\n${impatient.output()}`);
    // It did not wait for the jobs in hand: when it was gone, none of them had finished.
    const states = await stack.db.task.findMany({ where: { id: { in: ids } }, select: { state: true } });
    assert.deepEqual(
      states.map((t) => t.state),
      ["STARTED", "STARTED", "STARTED"],
    );
    assert.doesNotMatch(impatient.output(), /worker stopped/);

    // The unacked jobs go back to the queue; another worker finishes them, once each.
    const next = spawnWorker(configEnv(stack.config));
    children.push(next);
    assert.ok(await settle(stack.db, ids, 30_000), "every dropped job ran again");
    const { tasks, lost, duplicated } = await audit(stack.db, ids);
    assert.equal(lost, 0, describeTasks(tasks));
    assert.equal(duplicated, 0, describeTasks(tasks));
    assert.ok(
      tasks.every((t) => t.state === "SUCCESS"),
      describeTasks(tasks),
    );
    for (const task of tasks)
      assert.deepEqual(
        task.attempts.map((r) => r.outcome),
        ["LOST", "SUCCESS"],
      );
  });

  test("then the web ends live event streams, exits 0 promptly, and stops answering", async () => {
    const port = await freePort();
    const web = spawnWeb(configEnv(stack.config, { PORT: String(port) }));
    children.push(web);
    await waitFor(
      "the web child to answer /healthz",
      () =>
        httpGet(`${web.url}/healthz`).then(
          (r) => r.status === 200,
          () => false,
        ),
      30_000,
    );

    const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${web.url}/events`, { agent: false }, resolve).on("error", reject);
    });
    assert.equal(stream.statusCode, 200);
    let received = "";
    stream.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
    // "end" means the server finished the response; a bare "close" would be a dropped socket.
    const ended = new Promise<string>((resolve) => {
      stream.on("end", () => resolve("end"));
      stream.on("close", () => resolve("close"));
      stream.on("error", (err) => resolve(`error: ${err.message}`));
    });
    await waitFor("the snapshot event", () => received.includes("event: snapshot"), 10_000);

    const signalledAt = Date.now();
    web.kill("SIGTERM");
    const exit = await Promise.race([web.exited, sleep(shutdownTimeoutMs + 5000).then(() => undefined)]);
    const tookMs = Date.now() - signalledAt;
    assert.ok(exit, `the web did not exit:\n${web.output()}`);
    assert.deepEqual(exit, { code: 0, signal: null }, web.output());
    assert.ok(tookMs < 3000, `the web took ${tookMs} ms to stop with a live event stream open`);
    assert.equal(
      await Promise.race([ended, sleep(1000).then(() => "still open")]),
      "end",
      "the server ended the event stream",
    );

    await assert.rejects(httpGet(`${web.url}/healthz`), (err: NodeJS.ErrnoException) => err.code === "ECONNREFUSED");
  });
});

describe("when RabbitMQ is down as a worker starts", () => {
  let proxy: TcpProxy;
  let stack: Stack;
  let worker: ChildApp | undefined;
  before(async () => {
    proxy = await startTcpProxy(brokerPort, broker.hostname);
    await proxy.cut({ refuse: true });
    stack = await startStack({ workers: 0 });
  });
  after(async () => {
    await worker?.stop();
    await stack?.stop();
    await proxy?.close();
  });

  test("then it says so in one line, keeps trying, and consumes jobs once the broker is reachable", async () => {
    worker = spawnWorker(configEnv(stack.config, { AMQP_URL: proxiedAmqpUrl(proxy) }));
    await worker.waitForOutput(/not reachable/, 30_000);
    await sleep(2000); // a few more reconnect attempts
    const output = worker.output();
    const lines = output.split("\n").filter((line) => /not reachable/.test(line));
    assert.equal(lines.length, 1, output);
    const line = lines[0]!;
    assert.match(line, new RegExp(`RabbitMQ is not reachable at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${proxy.port}`));
    assert.match(line, /docker compose up -d rabbitmq/);
    assert.doesNotMatch(output, /guest:guest/);
    assert.doesNotMatch(output, /^\s+at /m, "no stack trace");
    assert.doesNotMatch(output, /"stack"/, "no stack trace");
    assert.ok(isAlive(worker), "the worker keeps running while the broker is away");

    const task = await submitApi(stack, 0, 3);
    assert.equal(task.queued, true, "the web is on the real broker");
    await proxy.restore();
    await worker.waitForOutput(/connected to RabbitMQ/, 20_000);
    const done = await waitFor(
      "the task to succeed",
      async () => {
        const row = await stack.db.task.findUnique({ where: { id: task.id } });
        return row && FINISHED.includes(row.state) ? row : undefined;
      },
      20_000,
    ).catch(() => undefined);
    const { lost, duplicated } = await audit(stack.db, [task.id]);
    assert.equal(done?.state, "SUCCESS", worker.output());
    assert.equal(done?.photoCount, 3);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
  });
});
