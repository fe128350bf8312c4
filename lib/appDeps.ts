// What the web app is built from: the composition root (web.ts) makes these, createApp
// (app.ts) and the routes take them. A module of its own, so the routes need not import
// app.ts, which imports them.
import type { BreedCatalogCache } from "./dogs/breeds.ts";
import type { Config } from "./platform/config.ts";
import type { History, WindowName } from "./useCases/history.ts";
import type { MessageReader } from "./useCases/deadLetters.ts";
import type { EventHub } from "./live/eventHub.ts";
import type { Logger } from "./platform/logger.ts";
import type { QueueOverview } from "./monitor/overview.ts";
import type { Queries } from "./store/queries/index.ts";
import type { TaskDeps } from "./useCases/tasks.ts";
import type { WorkerRegistry } from "./monitor/workerRegistry.ts";

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
  /** What pages and use cases read (and the audit trail they write): lib/store/queries/. */
  data: Queries;
  breeds: BreedCatalogCache;
  tasks: TaskDeps;
  hub: EventHub;
  workers: WorkerRegistry;
  /** Is the broker up (for /readyz)? */
  queue: {
    isConnected(): boolean;
    publishEvent(routingKey: string, payload: unknown): void;
    readonly deadLetterQueue: string;
  } & MessageReader;
  /** The monitor's history over a window (lib/useCases/history.ts, cached a few seconds). */
  history: (window: WindowName) => Promise<History>;
  /** The queue panel's numbers (lib/monitor/overview.ts). */
  monitor: (() => Promise<QueueOverview>) & { forget?(): void };
}
