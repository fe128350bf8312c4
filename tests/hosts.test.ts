// Beyond one machine, simulated honestly: a web and two workers on three hosts (network
// namespaces of this test's own, on a bridge of its own), one PostgreSQL database and one
// RabbitMQ. Mid-run one worker host loses its network for 15 s; every task must still end
// SUCCESS with one result, and nothing stay in the outbox.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";
import { openDatabase, type Db } from "../lib/store/db.ts";
import { asPostgresAdmin, postgresUrl } from "./support/database.ts";
import { canMakeNamespaces, makeHosts, type Hosts } from "./support/hosts.ts";
import { deleteQueues, waitFor } from "./support/stack.ts";

const JOBS = 300;
const skip = await canMakeNamespaces();

describe("when a web and two workers run on three hosts against one PostgreSQL and one RabbitMQ", { skip }, () => {
  let hosts: Hosts;
  let fake: FakeDogApi;
  let db: Db;
  const database = `gendog_hosts_${randomBytes(4).toString("hex")}`;
  const queue = `gendog.hosts.${randomBytes(4).toString("hex")}`;
  const processes: (ChildProcess & { output(): string })[] = [];

  before(async () => {
    hosts = await makeHosts(["web", "a", "b"]);
    await hosts.forward(5672);
    await hosts.forward(5432);
    fake = await startFakeDogApi({ host: hosts.gateway, latencyMs: 300 });
    await asPostgresAdmin(`CREATE DATABASE ${database}`);
    const env = {
      NODE_ENV: "test",
      DATABASE_URL: postgresUrl(database).replace("127.0.0.1", hosts.gateway),
      AMQP_URL: `amqp://guest:guest@${hosts.gateway}:5672`,
      QUEUE_NAME: queue,
      DOG_API_URL: fake.url,
      DOG_API_TIMEOUT_MS: "2000",
      DOG_API_MAX_RPS: "0",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "1000",
      RECOVERY_GRACE_MS: "5000",
      RATE_LIMIT_PER_MINUTE: "0",
      WORKER_CONCURRENCY: "16",
      LOG_LEVEL: "warn",
    };
    processes.push(hosts.spawn("web", "web.ts", { ...env, HOST: hosts.address("web"), PORT: "3000" }));
    processes.push(hosts.spawn("a", "tasks/worker.ts", env), hosts.spawn("b", "tasks/worker.ts", env));
    db = await openDatabase(postgresUrl(database));
    await waitFor(
      "the web to be ready",
      async () => (await fetch(`http://${hosts.address("web")}:3000/readyz`).catch(() => undefined))?.status === 200,
      60_000,
    );
    await waitFor("both workers to be running", async () => (await db.worker.count()) === 2, 60_000);
  });

  after(async () => {
    await db?.$disconnect();
    await hosts?.cleanup();
    await fake?.close();
    await asPostgresAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await deleteQueues(queue, { baseMs: 100, maxMs: 1000 }).catch(() => {});
  });

  test(
    "then, though one worker host is cut off for 15 s mid-run, every task ends SUCCESS once and the outbox is empty",
    { timeout: 180_000 },
    async () => {
      const web = `http://${hosts.address("web")}:3000`;
      const ids: string[] = [];
      const submit = async (i: number) => {
        const res = await fetch(`${web}/api/tasks`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ breed: "hound", limit: 1 + (i % 5) }),
        });
        if (res.status !== 202) assert.fail(`POST /api/tasks answered ${res.status}: ${await res.text()}`);
        ids.push(((await res.json()) as { id: string }).id);
      };
      for (let i = 0; i < JOBS / 3; i++) await submit(i);
      // `ip netns exec` execs node, so the worker's pid (part of its id) is the spawned one.
      const onB = { contains: `-${processes[2]!.pid}-` };
      await waitFor(
        "worker b to hold jobs",
        async () => (await db.attempt.count({ where: { workerId: onB, outcome: null } })) > 0,
        20_000,
      );
      await hosts.linkDown("b");
      const cutAt = Date.now();
      const heldByB = await db.attempt.count({ where: { workerId: onB, outcome: null } });
      for (let i = JOBS / 3; i < JOBS; i++) await submit(i);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 15_000 - (Date.now() - cutAt))));
      await hosts.linkUp("b");

      const finished = () => db.task.count({ where: { state: { in: ["SUCCESS", "FAILURE"] } } });
      const settled = await waitFor(`${JOBS} tasks to finish`, async () => (await finished()) === JOBS, 90_000).then(
        () => true,
        () => false,
      );
      const tasks = await db.task.findMany({ include: { attempts: true, photos: true } });
      const open = tasks.filter((t) => t.state !== "SUCCESS");
      assert.ok(
        settled && open.length === 0,
        `${open.length} tasks not SUCCESS: ${open
          .slice(0, 5)
          .map((t) => `${t.id} ${t.state}`)
          .join(", ")}\n${processes.map((p) => p.output().slice(-2000)).join("\n---\n")}`,
      );
      assert.equal(tasks.length, JOBS);
      for (const task of tasks) {
        const finishing = task.attempts.filter((r) => r.outcome === "SUCCESS").length;
        assert.equal(finishing, 1, `task ${task.id} finished by ${finishing} runs`);
        assert.equal(
          task.photos.length,
          task.limit,
          `task ${task.id} has ${task.photos.length} photo links for limit ${task.limit}`,
        );
        assert.equal(new Set(task.photos.map((p) => p.photoId)).size, task.photos.length);
      }
      assert.equal(await db.outboxMessage.count({ where: { sentAt: null } }), 0);
      const byWorker = new Set(
        tasks.flatMap((t) =>
          t.attempts.filter((r) => r.outcome === "SUCCESS").map((r) => r.workerId.split("-").at(-2)),
        ),
      );
      assert.equal(byWorker.size, 2, "both worker hosts did work");
      assert.ok(heldByB > 0);
      console.log(
        `hosts: ${JOBS} jobs on PostgreSQL, web + 2 worker hosts, one cut off 15 s holding ${heldByB} jobs: all SUCCESS once, ${tasks.flatMap((t) => t.attempts).filter((r) => r.outcome === "LOST" || r.outcome === "SKIPPED").length} runs lost or overtaken`,
      );
    },
  );
});
