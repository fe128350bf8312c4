// The web app on fakes, for the fast route tests: createApp (app.ts) with a real database
// file (a fresh SQLite copy, or PostgreSQL with TEST_DATABASE=postgres) but no RabbitMQ, no
// dog.ceo and no child processes. The broker, its queue counts, the breed list and the
// dispatcher are small stand-ins a test can read and turn off.
import request from "supertest";
import { createApp, type AppDeps } from "../../app.ts";
import { BreedCatalog, type BreedList } from "../../lib/dogs/breeds.ts";
import { createLifecycle, type Lifecycle, type OutboxJob } from "../../lib/lifecycle/lifecycle.ts";
import { EventHub } from "../../lib/live/eventHub.ts";
import type { QueueOverview } from "../../lib/monitor/overview.ts";
import { WorkerRegistry, type Heartbeat } from "../../lib/monitor/workerRegistry.ts";
import { loadConfig } from "../../lib/platform/config.ts";
import { createLogger } from "../../lib/platform/logger.ts";
import { openDatabase } from "../../lib/store/db.ts";
import { openStore } from "../../lib/store/index.ts";
import { queriesOver, type Queries } from "../../lib/store/queries/index.ts";
import { cachedHistory } from "../../lib/useCases/history.ts";
import type { JobDispatcher } from "../../lib/useCases/tasks.ts";
import { freshDatabase } from "./database.ts";

export const FAKE_BREEDS: BreedList = { hound: ["afghan", "basset"], pug: [], husky: [] };

/** A broker that is up until a test says otherwise; it records the events published and holds no messages. */
export function fakeBroker() {
  const published: { routingKey: string; payload: unknown }[] = [];
  const broker = {
    connected: true,
    published,
    deadLetterQueue: "gendog.fake.dead",
    isConnected: () => broker.connected,
    publishEvent(routingKey: string, payload: unknown) {
      published.push({ routingKey, payload });
    },
    async readMessages() {
      return { total: 0, messages: [], removed: 0 };
    },
  };
  return broker;
}

/** The queue panel's numbers, as a broker with an empty work queue and one consumer reports them. */
export function fakeMonitor(broker: { isConnected(): boolean }): AppDeps["monitor"] {
  const overview = async (): Promise<QueueOverview> => {
    const up = broker.isConnected();
    const count = (n: number) => (up ? n : null);
    return {
      broker: { connected: up },
      queue: up ? "gendog.fake" : null,
      ready: count(0),
      reruns: count(0),
      unacked: 0,
      consumers: count(1),
      retrying: count(0),
      dead: count(0),
      waitingInOutbox: 0,
    };
  };
  return Object.assign(overview, { forget() {} });
}

/**
 * Takes every job the web hands it and marks it queued, as the outbox relay does when the broker confirms at once;
 * `jobs` lists them.
 */
export function recordingDispatcher(lifecycle: Lifecycle): JobDispatcher & { jobs: OutboxJob[] } {
  const jobs: OutboxJob[] = [];
  return {
    jobs,
    async dispatch(job) {
      jobs.push(job);
      await lifecycle.markQueued([job]);
      return { queued: true, queuedAt: new Date() };
    },
  };
}

/** A worker's heartbeat, alive and taking jobs unless told otherwise. */
export function heartbeat(id: string, changes: Partial<Heartbeat> = {}): Heartbeat {
  return {
    id,
    host: "test-host",
    pid: 4242,
    concurrency: 4,
    done: 0,
    failed: 0,
    skipped: 0,
    inFlight: 0,
    startedAt: new Date().toISOString(),
    ready: true,
    paused: false,
    ...changes,
  };
}

export interface FakeAppOptions {
  /** Environment for loadConfig, over the test defaults (no rate limit, no admin password). */
  env?: Record<string, string>;
  /** Changes to the dependencies after they are built: a database that fails, say. */
  change?: (deps: AppDeps) => AppDeps;
}

/** createApp on a fresh database and fakes; stop() closes the database and drops it. */
export async function startFakeApp(options: FakeAppOptions = {}) {
  const database = await freshDatabase();
  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: database.url,
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: "silent",
    ...options.env,
  });
  const db = await openDatabase(config.databaseUrl);
  const store = await openStore(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs });
  const data = queriesOver(db, store);
  const broker = fakeBroker();
  const events = { emit() {} };
  const lifecycle = createLifecycle(store, events);
  const dispatcher = recordingDispatcher(lifecycle);
  const workers = new WorkerRegistry();
  const built: AppDeps = {
    config,
    logger: createLogger(config.logLevel, "test"),
    data,
    breeds: { get: async () => new BreedCatalog(FAKE_BREEDS) },
    tasks: { data, lifecycle, events, dispatcher, publishWaitMs: 0 },
    hub: new EventHub(),
    workers,
    queue: broker,
    monitor: fakeMonitor(broker),
    history: cachedHistory(data.history),
  };
  const deps = options.change ? options.change(built) : built;
  const { app, eventStreams } = createApp(deps);
  return {
    app,
    config,
    db,
    broker,
    dispatcher,
    workers,
    http: () => request(app),
    /** Keeps cookies between requests, as a browser posting forms does. */
    agent: () => request.agent(app),
    async stop() {
      eventStreams.closeAll();
      await db.$disconnect();
      await store.close();
      await database.drop();
    },
  };
}

export type FakeApp = Awaited<ReturnType<typeof startFakeApp>>;

/** The app's queries with the database's ping answered by `ping` (a database that is down, or silent). */
export function withPing(deps: AppDeps, ping: Queries["ping"]): AppDeps {
  return { ...deps, data: { ...deps.data, ping } };
}
