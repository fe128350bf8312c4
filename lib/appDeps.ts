// What the web app is built from: the composition root (web.ts) makes these, createApp
// (app.ts) and the routes take them. A module of its own, so the routes need not import
// app.ts, which imports them.
import type { BreedCatalogCache } from "./breeds.ts";
import type { Config } from "./config.ts";
import type { Db } from "./db.ts";
import type { History, WindowName } from "./history.ts";
import type { MessageReader } from "./deadLetters.ts";
import type { EventHub } from "./eventHub.ts";
import type { Logger } from "./logger.ts";
import type { QueueOverview } from "./monitor.ts";
import type { PageReads } from "./store/index.ts";
import type { TaskDeps } from "./useCases.ts";
import type { WorkerRegistry } from "./workers.ts";

export interface AppDeps {
  config: Pick<
    Config,
    | "env"
    | "imageOrigins"
    | "rateLimitPerMinute"
    | "csrfSecret"
    | "secureCookies"
    | "streams"
    | "adminPassword"
    | "controlSecret"
    | "trustProxy"
    | "queueName"
    | "databaseTimeoutMs"
  >;
  logger: Logger;
  db: Db;
  /** The plain gallery and newest tasks, read without Prisma's query compiler (the store's). */
  reads: PageReads;
  breeds: BreedCatalogCache;
  tasks: TaskDeps;
  hub: EventHub;
  workers: WorkerRegistry;
  /** Is the broker up (for /readyz)? */
  queue: { isConnected(): boolean; publishEvent(routingKey: string, payload: unknown): void } & MessageReader;
  /** The monitor's history over a window (lib/history.ts, cached a few seconds). */
  history: (window: WindowName) => Promise<History>;
  /** The queue panel's numbers (lib/monitor.ts). */
  monitor: (() => Promise<QueueOverview>) & { forget?(): void };
}
