// Builds the Express app from its dependencies, as a list of what it is made of; never
// listens (web.ts does).
import express from "express";
import type { AppDeps } from "./lib/appDeps.ts";
import { webMetrics } from "./lib/platform/metrics.ts";
import { requestLogging } from "./lib/platform/requestLog.ts";
import { countTasksByState } from "./lib/useCases/taskSearch.ts";
import { adminOnly } from "./routes/admin.ts";
import { apiRoutes } from "./routes/api.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { bulkPageRoutes } from "./routes/bulkPages.ts";
import { monitorActionRoutes } from "./routes/monitorActions.ts";
import { monitorApiRoutes } from "./routes/monitorApi.ts";
import { taskCreationLimit } from "./routes/limits.ts";
import { pageRoutes } from "./routes/pages.ts";
import { setUpCompression } from "./routes/setup/compression.ts";
import { errorHandler, notFound } from "./routes/setup/errors.ts";
import { setUpForms } from "./routes/setup/forms.ts";
import { setUpSecurityHeaders } from "./routes/setup/security.ts";
import { setUpStaticFiles } from "./routes/setup/staticFiles.ts";
import { setUpTracing } from "./routes/setup/tracing.ts";
import { setUpViews } from "./routes/setup/views.ts";

export type { AppDeps } from "./lib/appDeps.ts";

/** The app, and the live event streams, which a stopping server ends itself. */
export function createApp(deps: AppDeps) {
  const app = express();
  app.disable("x-powered-by");
  // X-Forwarded-For names the client only when a proxy the operator named sent it: anyone
  // else could make up a new address for every request (guesses, streams, "retried by").
  app.set("trust proxy", deps.config.trustProxy.length > 0 ? deps.config.trustProxy : false);
  setUpViews(app, deps.config.env !== "development");
  app.use(setUpTracing());
  app.use(requestLogging(deps.logger));
  app.use(setUpSecurityHeaders(deps.config));
  app.use(setUpCompression());
  app.use(setUpStaticFiles());

  const createLimit = taskCreationLimit(deps.config.rateLimitPerMinute);
  const admin = adminOnly(deps.config);
  const events = eventRoutes(deps);
  app.use(healthRoutes(deps));
  app.use(
    metricsRoutes(
      webMetrics({
        taskCounts: () => countTasksByState(deps.data.search),
        monitor: deps.monitor,
        openStreams: () => events.openStreams(),
        workers: () => deps.workers.list(),
      }),
    ),
  );
  app.use("/api", monitorApiRoutes(deps, admin));
  app.use("/api", apiRoutes(deps, createLimit, admin));
  app.use(events);
  app.use(setUpForms(deps.config));
  app.use(pageRoutes(deps, createLimit, admin));
  app.use(monitorActionRoutes(deps, admin));
  app.use(bulkPageRoutes(deps, admin));

  app.use(notFound);
  app.use(errorHandler(deps));
  return { app, eventStreams: events };
}
