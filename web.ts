// The web process: `npm run web`. Builds the app's dependencies, listens, and shuts
// down in order: stop accepting, end live streams, finish requests, close the rest.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { createApp } from "./app.ts";
import { cachedBreedCatalog } from "./lib/dogs/breeds.ts";
import type { Config } from "./lib/platform/config.ts";
import { cachedHistory } from "./lib/useCases/history.ts";
import { startTracing } from "./lib/platform/tracing.ts";
import { dogApiFromConfig } from "./lib/dogs/dogApi.ts";
import { controlKey } from "./lib/monitor/controlMessages.ts";
import { EventHub } from "./lib/live/eventHub.ts";
import { relayEvents, webEvents } from "./lib/live/eventRelay.ts";
import type { Logger } from "./lib/platform/logger.ts";
import { createLifecycle } from "./lib/lifecycle/lifecycle.ts";
import { openStore } from "./lib/store/index.ts";
import { migrateIfNeeded } from "./lib/store/migrate.ts";
import { openQueries } from "./lib/store/queries/index.ts";
import { queueMonitor } from "./lib/monitor/overview.ts";
import { startMonitorFeed } from "./lib/monitor/feed.ts";
import { runProcess, runSteps } from "./lib/platform/shutdown.ts";
import { WorkerRegistry } from "./lib/monitor/workerRegistry.ts";
import { OutboxRelay } from "./tasks/outbox.ts";
import { Broker } from "./tasks/queue.ts";

export async function startWeb(config: Config, logger: Logger) {
  const stopTracing = await startTracing(config.otelEndpoint, config.otelServiceName ?? "gendog-web");
  await migrateIfNeeded(config.databaseUrl);
  const store = await openStore(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs });
  const data = await openQueries(config.databaseUrl, store);
  const dogApi = dogApiFromConfig(config);
  const broker = new Broker({
    url: config.amqpUrl,
    queueName: config.queueName,
    queueType: config.queueType,
    retry: config.retry,
    logger,
  });
  const hub = new EventHub();
  const workers = new WorkerRegistry();

  const events = webEvents(hub, broker);
  const lifecycle = createLifecycle(store, events);
  const relay = await relayEvents({ broker, hub, workers, logger, key: controlKey(config) });
  await broker.start();

  const outbox = new OutboxRelay({ lifecycle, broker, logger });
  outbox.start();
  const breeds = cachedBreedCatalog(dogApi, logger);
  void breeds.get(); // warm the breed list so the first visitor does not wait for dog.ceo
  const monitor = queueMonitor({ queue: broker, outbox, workers });
  const monitorFeed = startMonitorFeed({ hub, monitor, workers });
  const { app, eventStreams } = createApp({
    config,
    logger,
    data,
    breeds,
    tasks: { data, lifecycle, events, dispatcher: outbox, publishWaitMs: config.publishWaitMs },
    hub,
    workers,
    queue: broker,
    monitor,
    history: cachedHistory(data.history),
  });

  // Deliberate timeouts, checked every second (Node's default is every 30 s): a client that
  // sends its headers or body slowly, or keeps an idle connection, is not held for minutes.
  const server = createServer(
    {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      keepAliveTimeout: config.http.keepAliveTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    app,
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  logger.info(
    { url: `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${port}` },
    "GenDog web is listening",
  );

  return {
    port,
    server,
    async stop(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      eventStreams.closeAll();
      server.closeIdleConnections();
      const forced = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearTimeout(forced);
      await runSteps(logger, [
        ["stop outbox relay", () => outbox.stop()],
        ["stop hearing events", () => (monitorFeed.stop(), relay.stop())],
        ["close broker", () => broker.close()],
        ["close dog.ceo client", () => dogApi.close()],
        [
          "close database",
          async () => {
            await data.close();
            await store.close();
          },
        ],
        ["flush traces", stopTracing],
      ]);
      logger.info("web stopped");
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) runProcess("web", startWeb);
