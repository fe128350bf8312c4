// The JSON API, modelled on Flower's: tasks, photos, the queue and the workers.
// It takes only application/json bodies, so a cross-site HTML form cannot call it.
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import { AppError, ValidationError } from "../lib/errors.ts";
import { failureGroups, retryGroup, retryTask } from "../lib/failures.ts";
import { clearPhotos, listPhotos } from "../lib/gallery.ts";
import { listTasks } from "../lib/taskSearch.ts";
import { cancelTask, getTaskDetail, submitTask } from "../lib/useCases.ts";
import { parseTaskInput } from "../lib/validation.ts";
import { actorOf } from "./admin.ts";
import { countFrom } from "./monitorActions.ts";
import { queryText, taskFilterFrom } from "./query.ts";

/** admin: what an action that changes or deletes must pass (routes/admin.ts). */
export function apiRoutes(deps: AppDeps, createLimit: RequestHandler, admin: RequestHandler[] = []) {
  const router = Router();
  const json: RequestHandler[] = [requireJsonBody, express.json({ limit: "4kb", strict: true })];

  router.post("/tasks", ...json, createLimit, async (req, res) => {
    const input = parseTaskInput(req.body, await deps.breeds.get(), "json");
    const { task, queued } = await submitTask(deps.tasks, input);
    res
      .status(202)
      .location(`/api/tasks/${task.id}`)
      .json({ ...task, queued });
  });

  router.get("/tasks", async (req, res) => {
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    res.json(await listTasks(deps.db, { ...taskFilterFrom(req.query), limit }));
  });

  router.get("/tasks/:id", async (req, res) => {
    res.json(await getTaskDetail(deps.db, req.params.id ?? ""));
  });

  router.post("/tasks/:id/cancel", ...json, ...admin, async (req, res) => {
    res.json(await cancelTask(deps.tasks, String(req.params.id)));
  });

  router.post("/tasks/:id/retry", ...json, ...admin, async (req, res) => {
    const { task, queued } = await retryTask(deps.tasks, String(req.params.id), actorOf(req));
    res.status(202).json({ ...task, queued });
  });

  router.get("/failures", async (req, res) => {
    const limit = Math.min(100, Math.max(1, Number(req.query.limit) || 10));
    res.json({ groups: await failureGroups(deps.db, limit) });
  });

  // Without `expected`, a dry run: how many it would send. With it, sends them if that is still the count.
  router.post("/failures/retry", ...json, ...admin, async (req, res) => {
    const fingerprint = typeof req.body?.fingerprint === "string" ? req.body.fingerprint : "";
    if (!fingerprint) throw new ValidationError({ fingerprint: "Say which group: its fingerprint, as GET /api/failures lists it." });
    const expected = req.body?.expected === undefined ? undefined : countFrom(req.body.expected);
    const result = await retryGroup(deps.tasks, fingerprint, { expected, by: actorOf(req) });
    res.json({ fingerprint, ...result, dryRun: expected === undefined });
  });

  router.get("/photos", async (req, res) => {
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    res.json(await listPhotos(deps.db, { taskId: queryText(req.query.task), breed: queryText(req.query.breed), cursor: queryText(req.query.cursor), limit }));
  });

  router.delete("/photos", ...json, ...admin, async (_req, res) => {
    res.json({ deleted: await clearPhotos(deps.tasks) });
  });

  router.get("/queue", async (_req, res) => {
    const overview = await deps.monitor();
    res.status(overview.broker.connected ? 200 : 503).json(overview);
  });

  router.get("/workers", (_req, res) => {
    res.json({ workers: deps.workers.list() });
  });

  router.get("/breeds", async (_req, res) => {
    res.json({ breeds: (await deps.breeds.get()).breeds });
  });

  router.use((_req: Request, _res: Response, next: NextFunction) => next(new AppError(404, "not_found", "There is no such API endpoint.")));
  return router;
}

/**
 * Every request that changes something must say it is JSON, with or without a body: a
 * cross-site form or a no-cors fetch cannot send that header, so it cannot call the API.
 */
function requireJsonBody(req: Request, _res: Response, next: NextFunction) {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
  if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
    return next(new AppError(415, "unsupported_media_type", "Send requests that change something as application/json."));
  }
  next();
}
