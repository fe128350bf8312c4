// Test stacks on the real parts: the web and worker as they run in production (in this
// process, on free ports), the machine's RabbitMQ with a queue name of their own, a
// fresh database (a SQLite file, or PostgreSQL with TEST_DATABASE=postgres), and the
// dog.ceo stand-in.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import amqplib from "amqplib";
import request from "supertest";
import { loadConfig, type Config } from "../../lib/platform/config.ts";
import { openDatabase, type Db } from "../../lib/store/db.ts";
import { openStore } from "../../lib/store/index.ts";
import { queriesOver } from "../../lib/store/queries/index.ts";
import { createLifecycle, type OutboxJob } from "../../lib/lifecycle/lifecycle.ts";
import type { TaskDeps } from "../../lib/useCases/tasks.ts";
import { createLogger } from "../../lib/platform/logger.ts";
import { startWeb } from "../../web.ts";
import { startWorker } from "../../tasks/worker.ts";
import { topologyQueueNames } from "../../tasks/broker/topology.ts";
import { startFakeDogApi, type FakeDogApi } from "../../dev/fake-dog-api.ts";
import { freshDatabase, type TestDatabase } from "./database.ts";

export { csrfTokenFrom, galleryImages } from "./pages.ts";

export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

export interface StackOptions {
  workers?: number;
  web?: boolean;
  env?: Record<string, string>;
  fake?: FakeDogApi;
}

export async function testConfig(
  fake: FakeDogApi,
  env: Record<string, string> = {},
): Promise<{ config: Config; database: TestDatabase }> {
  const database = await freshDatabase();
  const config = loadConfig({
    NODE_ENV: "test",
    PORT: "0",
    DATABASE_URL: database.url,
    AMQP_URL,
    QUEUE_NAME: `gendog.test.${randomBytes(4).toString("hex")}`,
    DOG_API_URL: fake.url,
    DOG_API_TIMEOUT_MS: "1500",
    DOG_API_MAX_RPS: "0", // the stand-in needs no politeness; tests of the ceiling set it
    RETRY_BASE_MS: "50",
    RETRY_MAX_MS: "400",
    RATE_LIMIT_PER_MINUTE: "0",
    PUBLISH_WAIT_MS: "3000",
    SHUTDOWN_TIMEOUT_MS: "5000",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    ...env,
  });
  return { config, database };
}

export async function startStack(options: StackOptions = {}) {
  const fake = options.fake ?? (await startFakeDogApi());
  const { config, database } = await testConfig(fake, options.env);
  const logger = createLogger(config.logLevel, "test");
  const web = options.web === false ? undefined : await startWeb(config, logger);
  const workers: Awaited<ReturnType<typeof startWorker>>[] = [];
  for (let i = 0; i < (options.workers ?? 1); i++) workers.push(await startWorker(config, logger));
  const db = await openDatabase(config.databaseUrl);
  const store = await openStore(config.databaseUrl);
  /** The queries the web's use cases read with, over this stack's Prisma client. */
  const data = queriesOver(db, store);
  const url = web ? `http://127.0.0.1:${web.port}` : "";
  // The web listens before it has reached RabbitMQ (it connects in the background): a test's
  // first monitor action could meet "queue not reachable". Wait for /readyz a while; a stack
  // whose broker is away on purpose goes on after that.
  if (web)
    await waitFor("the web to be ready", async () => (await request(url).get("/readyz")).status === 200, 10_000).catch(
      () => {},
    );
  // Workers too connect in the background: a job a test publishes itself before the queue is
  // declared is dropped by the broker, unroutable. Wait until every worker consumes.
  if (workers.length > 0)
    await waitFor(
      "the workers to consume",
      async () =>
        (await queueCounts(config.queueName).catch(() => ({ consumerCount: 0 }))).consumerCount >= workers.length,
      10_000,
    ).catch(() => {});

  return {
    config,
    fake,
    db,
    data,
    url,
    web,
    workers,
    http: () => request(url),
    agent: () => request.agent(url),
    /**
     * The use cases the web calls, on this stack's database; jobs reach the broker through whichever relay takes them
     * from the table.
     */
    taskDeps(): TaskDeps {
      const lifecycle = createLifecycle(store, { emit() {} });
      const dispatcher = {
        dispatch: async (job: OutboxJob) => (await lifecycle.releaseOutbox([job.id]), { queued: true }),
      };
      return { data, lifecycle, events: { emit() {} }, dispatcher, publishWaitMs: 0 };
    },
    async stop() {
      for (const worker of workers) await worker.stop();
      await web?.stop();
      await db.$disconnect();
      await store.close();
      if (!options.fake) await fake.close();
      await deleteQueues(config.queueName, config.retry);
      await database.drop();
    },
  };
}

export type Stack = Awaited<ReturnType<typeof startStack>>;

/** Messages waiting in a queue, asked of the broker directly. */
export async function queueDepth(queue: string): Promise<number> {
  return (await queueCounts(queue)).messageCount;
}

/** The queue's messages and consumers, as the broker counts them; fails (404) while the queue does not exist. */
async function queueCounts(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    return await channel.checkQueue(queue);
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Puts raw bytes on the work queue, as a foreign or buggy producer might. */
export async function publishRaw(
  queue: string,
  content: Buffer | string,
  headers: Record<string, unknown> = {},
): Promise<void> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    channel.sendToQueue(queue, Buffer.from(content), { persistent: true, headers });
    await channel.waitForConfirms();
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Empties a queue, so a test starts from only the messages it makes. */
export async function purgeQueue(queue: string): Promise<void> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    await channel.purgeQueue(queue);
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Moves every message waiting in a retry queue on to the work queue, as its expiry would
 * (same body, id and headers): a test's "the wait is over now", instead of sleeping it out.
 */
export async function endRetryWaits(retryQueue: string, workQueue: string): Promise<number> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    let moved = 0;
    for (let msg = await channel.get(retryQueue); msg; msg = await channel.get(retryQueue)) {
      const { messageId, headers, contentType } = msg.properties;
      channel.sendToQueue(workQueue, msg.content, { persistent: true, messageId, headers, contentType });
      await channel.waitForConfirms();
      channel.ack(msg);
      moved += 1;
      if (moved >= 1000) break; // bounded: a test never waits on more than a handful
    }
    return moved;
  } finally {
    await connection.close().catch(() => {});
  }
}

export async function deleteQueues(queue: string, retry: { baseMs: number; maxMs: number }): Promise<void> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    const names = topologyQueueNames(queue, retry);
    for (const name of names) await channel.deleteQueue(name).catch(() => {});
    await channel.deleteExchange(`${queue}.events`).catch(() => {});
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Polls until check() returns a truthy value, failing with `what` after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function waitForTaskState(db: Db, taskId: string, states: string[], timeoutMs = 10_000) {
  return waitFor(
    `task ${taskId} to reach ${states.join("/")}`,
    async () => {
      const task = await db.task.findUnique({ where: { id: taskId } });
      return task && states.includes(task.state) ? task : undefined;
    },
    timeoutMs,
  );
}

/** Nothing was accepted: no task, no outbox message, nothing on the work queue. */
export async function assertNothingAccepted(stack: Stack): Promise<void> {
  assert.equal(await stack.db.task.count(), 0, "no task row");
  assert.equal(await stack.db.outboxMessage.count(), 0, "no outbox row");
  assert.equal(await queueDepth(stack.config.queueName), 0, "nothing on the queue");
}
