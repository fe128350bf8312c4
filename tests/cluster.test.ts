// AMQP_URL as a list of a cluster's nodes. A three-node RabbitMQ cluster of this test's own
// (tests/support/rabbitCluster.ts; the machine's broker is not touched) runs the web and two
// workers with QUEUE_TYPE=quorum while 500 jobs arrive; the node leading the work queue is
// SIGKILLed, and later the node the web is on. Nothing may be lost or done twice, and work
// may stand still for at most 15 s after each kill. Also: a bad node list stops the process,
// a node of another cluster and a queue of another type are refused with a clear error.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import amqplib from "amqplib";
import { pino } from "pino";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";
import type { Config } from "../lib/platform/config.ts";
import { openDatabase, type Db } from "../lib/store/db.ts";
import { Broker } from "../tasks/queue.ts";
import { retryQueueNames } from "../tasks/broker/topology.ts";
import { freshDatabase, type TestDatabase } from "./support/database.ts";
import { configEnv, freePort, spawnWeb, spawnWorker, type ChildApp } from "./support/faults.ts";
import { clusterUnavailable, startCluster, type RabbitCluster, type RabbitNode } from "./support/rabbitCluster.ts";
import {
  AMQP_URL,
  deleteQueues,
  startStack,
  testConfig,
  waitFor,
  waitForTaskState,
  type Stack,
} from "./support/stack.ts";

const JOBS = 500;
/** Submissions a second: the load lasts long enough for both kills and a restart in between. */
const PACE_PER_S = 10;
const MAX_STAND_STILL_MS = 15_000;
const BREEDS = ["hound/afghan", "bulldog/french", "pug", "husky", "beagle", "akita", "boxer", "collie/border"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("when AMQP_URL is a malformed list of nodes", () => {
  test("then the worker stops at once with one line naming AMQP_URL and the bad entry, its password hidden", async () => {
    const worker = spawnWorker({
      NODE_ENV: "test",
      AMQP_URL: "amqp://gendog:hunter2@127.0.0.1:5672, amqp://gendog:hunter2@127.0.0.1:56x2",
      LOG_LEVEL: "info",
    });
    try {
      const exit = await Promise.race([worker.exited, sleep(30_000).then(() => undefined)]);
      assert.deepEqual(exit, { code: 1, signal: null }, worker.output());
      assert.match(
        worker.stderr(),
        /configuration error: AMQP_URL entry 2 of 2 'amqp:\/\/gendog:\*\*\*@127\.0\.0\.1:56x2' is not a URL/,
      );
      assert.ok(!worker.output().includes("hunter2"), worker.output());
    } finally {
      await worker.stop();
    }
  });
});

describe("when the first nodes of AMQP_URL do not answer", () => {
  let stack: Stack | undefined;
  after(() => stack?.stop());

  test("then web and worker use the first node that does, and run jobs", async () => {
    const away = await freePort();
    stack = await startStack({ env: { AMQP_URL: `amqp://guest:guest@127.0.0.1:${away},${AMQP_URL}` } });
    await waitFor("the web to reach RabbitMQ", async () => (await stack!.http().get("/readyz")).status === 200, 20_000);
    const res = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    assert.equal((await waitForTaskState(stack.db, res.body.id, ["SUCCESS", "FAILURE"], 15_000)).state, "SUCCESS");
  });

  test("then, when none answers, each is named as it fails and one error line follows once all were tried", async () => {
    const lines: { level: number; msg: string; broker?: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const [a, b] = [await freePort(), await freePort()];
    const broker = new Broker({
      url: `amqp://gendog:hunter2@127.0.0.1:${a},amqp://gendog:hunter2@127.0.0.1:${b}`,
      queueName: "gendog.test.none",
      retry: { baseMs: 50, maxMs: 400 },
      logger,
    });
    await broker.start();
    try {
      await waitFor("an error once both nodes failed", () => lines.some((l) => l.level === 50), 10_000);
      const warned = lines.filter((l) => l.level === 40).map((l) => l.broker);
      assert.deepEqual(warned, [`amqp://gendog:***@127.0.0.1:${a}`]);
      const error = lines.find((l) => l.level === 50)!.msg;
      assert.match(
        error,
        new RegExp(
          `^RabbitMQ is not reachable at any of the 2 nodes in AMQP_URL \\(last amqp://gendog:\\*\\*\\*@127\\.0\\.0\\.1:${b}\\)`,
        ),
      );
      assert.ok(!JSON.stringify(lines).includes("hunter2"));
    } finally {
      await broker.close();
    }
  });
});

describe("when a queue of GenDog's name exists with another type", () => {
  const base = `gendog.test.${randomBytes(4).toString("hex")}`;
  let database: TestDatabase | undefined;
  let worker: ChildApp | undefined;
  after(async () => {
    await worker?.stop();
    await deleteQueues(`${base}.quorum`, { baseMs: 1000, maxMs: 60_000 });
    await database?.drop();
  });

  test("then the worker says which queue and what differs, and is not ready", async () => {
    // A classic queue where QUEUE_TYPE=quorum wants its quorum queue, its other arguments the same.
    const queue = `${base}.quorum`;
    const connection = await amqplib.connect(AMQP_URL);
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queue}.dead` },
    });
    await connection.close();
    database = await freshDatabase();
    worker = spawnWorker({
      NODE_ENV: "test",
      AMQP_URL,
      QUEUE_NAME: base,
      QUEUE_TYPE: "quorum",
      DATABASE_URL: database.url,
      LOG_LEVEL: "info",
    });
    const output = await worker.waitForOutput(/holds a queue of GenDog's name with other settings/, 30_000);
    assert.match(output, new RegExp(`inequivalent arg '[\\w-]+' for queue '${queue.replace(/\./g, "\\.")}'`));
    assert.match(output, /delete it .* or set another QUEUE_NAME/);
    assert.doesNotMatch(output, /connected to RabbitMQ"/);
  });
});

describe("when a RabbitMQ cluster loses a node under load", { skip: clusterUnavailable() }, () => {
  const clusterName = `gendog-test-${randomBytes(3).toString("hex")}`;
  let cluster: RabbitCluster | undefined;
  let fake: FakeDogApi | undefined;
  let database: TestDatabase | undefined;
  let db: Db | undefined;
  let config: Config;
  let web: ReturnType<typeof spawnWeb> | undefined;
  const children: ChildApp[] = [];

  before(
    async () => {
      const started = Date.now();
      cluster = await startCluster(3, 150_000);
      await cluster.ctl(cluster.nodes[0]!, "set_cluster_name", clusterName);
      console.log(`cluster: three nodes booted and joined in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      fake = await startFakeDogApi({ latencyMs: 20 });
      ({ config, database } = await testConfig(fake, {
        AMQP_URL: cluster.amqpUrl,
        QUEUE_TYPE: "quorum",
        RECOVERY_GRACE_MS: "5000",
        WORKER_CONCURRENCY: "32",
      }));
      db = await openDatabase(config.databaseUrl);
      const [n1, n2, n3] = cluster.nodes as [RabbitNode, RabbitNode, RabbitNode];
      web = spawnWeb(configEnv(config, { PORT: String(await freePort()) }));
      // The second worker lists the nodes in another order, so it starts on another node.
      children.push(
        web,
        spawnWorker(configEnv(config)),
        spawnWorker(configEnv(config, { AMQP_URL: [n3, n1, n2].map((n) => n.url).join(",") })),
      );
      await Promise.all(children.map((child) => child.waitForOutput(/connected to RabbitMQ/, 60_000)));
    },
    { timeout: 240_000 },
  );
  after(async () => {
    for (const child of children) await child.stop();
    await db?.$disconnect();
    await fake?.close();
    await database?.drop();
    // Its queues and everything else it held go with its nodes' folders.
    await cluster?.stop();
  });

  test("then the work, retry and dead-letter queues are quorum queues with a replica on each node", async () => {
    const queues = [
      config.queueName,
      `${config.queueName}.dead`,
      ...retryQueueNames(config.queueName, config.retry.baseMs, config.retry.maxMs, "quorum"),
    ];
    const info = await cluster!.queueInfo();
    for (const queue of queues)
      assert.deepEqual(info[queue]?.members.sort(), cluster!.nodes.map((n) => n.name).sort(), queue);
  });

  test("then every job succeeds once, and work stands still at most 15 s after each kill", { timeout: 300_000 }, () =>
    withLogsOnFailure(children, everyJobOnce),
  );

  async function everyJobOnce() {
    const t0 = Date.now();
    const step = (what: string) => console.log(`cluster test at ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const ids: string[] = [];
    let submitted = 0;
    let refused = 0;
    let kills = 0;
    // Steady submissions; the last hundred wait for the second kill, so there is work after it.
    const submitting = (async () => {
      for (let i = 0; i < JOBS; i++) {
        if (i === JOBS - 100) await waitFor("the second kill", () => kills >= 2, 180_000);
        const started = Date.now();
        for (let tries = 0; ; tries++) {
          const res = await fetch(`${web!.url}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ breed: BREEDS[i % BREEDS.length], limit: 1 + (i % 5) }),
            signal: AbortSignal.timeout(10_000),
          }).catch(() => undefined);
          if (res?.status === 202) {
            ids.push(((await res.json()) as { id: string }).id);
            break;
          }
          refused += 1;
          await res?.body?.cancel();
          if (tries >= 20) throw new Error(`submit ${i} refused 20 times (last ${res?.status})`);
          await sleep(500);
        }
        submitted += 1;
        await sleep(Math.max(0, 1000 / PACE_PER_S - (Date.now() - started)));
      }
    })();
    const finished = () => db!.task.count({ where: { state: "SUCCESS" } });

    await waitFor("80 tasks to succeed", async () => (await finished()) >= 80, 60_000);
    const leader = await cluster!.leaderOf(config.queueName);
    const firstKill = Date.now();
    await cluster!.kill(leader);
    kills += 1;
    step(
      `killed ${leader.name}, the work queue's leader, with ${await finished()} tasks done and ${submitted} submitted`,
    );
    // Back to three before the next loss: a three-node quorum survives one node down, not two.
    await waitFor(
      "work to go on after the first kill (30 tasks finished after it, for 3 s or more)",
      async () => (await finishedAfter(firstKill)) >= 30 && (await lastFinish()) > firstKill + 3000,
      60_000,
    );
    const restartAt = Date.now();
    step(`work goes on (${await finished()} done); restarting ${leader.name}`);
    await cluster!.restart(leader);
    step(`${leader.name} is up again`);
    await waitFor(
      "the restarted node to hold its replica again",
      async () => (await cluster!.membersOf(config.queueName)).online.length === 3,
      60_000,
    );
    const webNode = nodeOf(web!.output(), cluster!.nodes);
    const secondKill = Date.now();
    await cluster!.kill(webNode);
    kills += 1;
    step(`killed ${webNode.name}, the web's node, with ${await finished()} tasks done and ${submitted} submitted`);
    await submitting;
    step(`all ${submitted} submitted`);
    const settled = await waitFor(`${JOBS} tasks to succeed`, async () => (await finished()) >= JOBS, 120_000).then(
      () => true,
      () => false,
    );

    const times = (await db!.task.findMany({ where: { finishedAt: { not: null } }, select: { finishedAt: true } }))
      .map((t) => t.finishedAt!.getTime())
      .sort((a, b) => a - b);
    // The kills cut live connections: the web's at the second, and at the first whoever declared the queue (its leader
    // is that client's node).
    assert.match(web!.output(), /reconnected to RabbitMQ/);
    assert.ok(children.filter((child) => /lost the connection to RabbitMQ/.test(child.output())).length >= 2);
    const firstStill = standStill(times, firstKill, restartAt);
    const secondStill = standStill(times, secondKill, Infinity);
    console.log(
      `cluster failover: ${JOBS} jobs, ${submitted} submitted (${refused} submits retried); killed the work queue's leader ${leader.name}: work stood still ${(firstStill / 1000).toFixed(2)} s; ` +
        `killed the web's node ${webNode.name}${webNode === leader ? " (the restarted leader)" : ""}: work stood still ${(secondStill / 1000).toFixed(2)} s (restart of the first took ${((secondKill - restartAt) / 1000).toFixed(1)} s)`,
    );

    const tasks = await db!.task.findMany({ include: { photos: { include: { photo: true } }, attempts: true } });
    assert.ok(settled, `not every task succeeded: ${tasks.filter((t) => t.state !== "SUCCESS").length} left`);
    assert.equal(tasks.length, JOBS);
    assert.deepEqual(
      tasks.filter((t) => t.state !== "SUCCESS").map((t) => `${t.id} ${t.state}`),
      [],
    );
    for (const task of tasks) {
      const finishing = task.attempts.filter((run) => run.outcome === "SUCCESS" || run.outcome === "FAILURE");
      assert.equal(finishing.length, 1, `task ${task.id} has ${finishing.length} finishing runs`);
      const urls = task.photos.map((link) => link.photo.url);
      assert.equal(new Set(urls).size, urls.length, `task ${task.id} links a photo twice`);
      assert.equal(urls.length, task.limit);
    }
    assert.equal(await db!.outboxMessage.count({ where: { sentAt: null } }), 0, "the outbox is empty");
    assert.ok(firstStill <= MAX_STAND_STILL_MS, `work stood still ${firstStill} ms after the leader was killed`);
    assert.ok(secondStill <= MAX_STAND_STILL_MS, `work stood still ${secondStill} ms after the web's node was killed`);
  }

  test(
    "then a page's live stream, on the web's third node, hears a job's events from the workers",
    { timeout: 60_000 },
    async () => {
      const stop = new AbortController();
      const res = await fetch(`${web!.url}/events`, { signal: stop.signal, headers: { accept: "text/event-stream" } });
      assert.equal(res.status, 200);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += value;
        }
      })().catch(() => {});
      try {
        await waitFor("the stream's snapshot", () => /^event: snapshot$/m.test(text), 10_000);
        const submit = await fetch(`${web!.url}/api/tasks`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ breed: "pug", limit: 2 }),
        });
        const { id } = (await submit.json()) as { id: string };
        // SUCCESS is the worker's event: it reaches the web only through the events exchange and the web's
        // subscription.
        const heard = (block: string) =>
          /^event: task$/m.test(block) && block.includes(id) && block.includes('"state":"SUCCESS"');
        await waitFor("the task's SUCCESS event", () => text.split("\n\n").some(heard), 30_000);
      } finally {
        stop.abort();
        await reading;
      }
    },
  );

  test(
    "then a node answering with another cluster's name is refused, and used again once the name is right",
    { timeout: 90_000 },
    async () => {
      const up = cluster!.nodes.filter((n) => n.up);
      const http = () => fetch(`${web!.url}/readyz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status);
      await waitFor("the web to be ready", async () => (await http()) === 200, 30_000);
      const before = web!.output().length;
      // Every remaining node now says it belongs to another cluster; their connections drop.
      await cluster!.ctl(up[0]!, "set_cluster_name", "another-cluster");
      await cluster!.ctl(up[0]!, "close_all_connections", "test: pretend the nodes are another cluster's");
      await waitFor(
        "the web to refuse the nodes",
        () => /belongs to cluster 'another-cluster', not 'gendog-test-/.test(web!.output().slice(before)),
        30_000,
      );
      assert.equal(await http(), 503);
      await cluster!.ctl(up[0]!, "set_cluster_name", clusterName);
      await waitFor("the web to be ready again", async () => (await http()) === 200, 30_000);
    },
  );

  /** The node the web last said it connected to. */
  function nodeOf(output: string, nodes: RabbitNode[]): RabbitNode {
    const lines = output.split("\n").filter((line) => /"msg":"(re)?connected to RabbitMQ"/.test(line));
    const broker = String((JSON.parse(lines.at(-1) ?? "{}") as { broker?: string }).broker);
    const node = nodes.find((n) => broker.endsWith(`:${n.port}`));
    if (!node) throw new Error(`cannot tell the web's node from ${broker}`);
    return node;
  }

  function finishedAfter(time: number): Promise<number> {
    return db!.task.count({ where: { finishedAt: { gt: new Date(time) } } });
  }

  async function lastFinish(): Promise<number> {
    const last = await db!.task.findFirst({
      where: { finishedAt: { not: null } },
      orderBy: { finishedAt: "desc" },
      select: { finishedAt: true },
    });
    return last?.finishedAt?.getTime() ?? 0;
  }
});

/** Runs a test; if it fails, prints what web and workers warned about, so a failure on CI can be read. */
async function withLogsOnFailure(children: ChildApp[], run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    for (const child of children) {
      const warnings = child
        .output()
        .split("\n")
        .filter((line) => /"level":(40|50|60)/.test(line));
      console.log(`pid ${child.pid}, its last warnings and errors:\n${warnings.slice(-40).join("\n")}`);
    }
    throw err;
  }
}

/** The longest time without a task finishing from `from` until the last finish before `until`. */
function standStill(times: number[], from: number, until: number): number {
  const within = times.filter((t) => t > from && t < until);
  if (within.length === 0) return (Number.isFinite(until) ? until : Date.now()) - from;
  let longest = within[0]! - from;
  for (let i = 1; i < within.length; i++) longest = Math.max(longest, within[i]! - within[i - 1]!);
  return longest;
}
