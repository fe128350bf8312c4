// The JSON API, modelled on Flower's: tasks, photos, the queue and the workers.
// It takes only application/json bodies, so a cross-site HTML form cannot call it.
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import { AppError } from "../lib/platform/errors.ts";
import { clearPhotos, listPhotos } from "../lib/useCases/gallery.ts";
import { listTasks } from "../lib/useCases/taskSearch.ts";
import { cancelTask, getTaskDetail, submitTask } from "../lib/useCases/tasks.ts";
import { parseTaskInput } from "../lib/lifecycle/validation.ts";
import { actorOf } from "./admin.ts";
import { queryText, taskFilterFrom } from "./query.ts";

/** admin: what an action that changes or deletes must pass (routes/admin.ts). */
export function apiRoutes(deps: AppDeps, createLimit: RequestHandler, admin: RequestHandler[] = []) {
  const router = Router();
  const json = jsonBody();

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
    res.json(await listTasks(deps.data.search, { ...taskFilterFrom(req.query), limit }));
  });

  router.get("/tasks/:id", async (req, res) => {
    res.json(await getTaskDetail(deps.data.tasks, req.params.id ?? "", deps.workers));
  });

  router.post("/tasks/:id/cancel", ...json, ...admin, async (req, res) => {
    res.json(await cancelTask(deps.tasks, String(req.params.id), actorOf(req)));
  });

  router.get("/photos", async (req, res) => {
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    res.json(
      await listPhotos(deps.data.photos, {
        taskId: queryText(req.query.task),
        breed: queryText(req.query.breed),
        cursor: queryText(req.query.cursor),
        limit,
      }),
    );
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

  router.use((_req: Request, _res: Response, next: NextFunction) =>
    next(new AppError(404, "not_found", "There is no such API endpoint.")),
  );
  return router;
}

/**
 * What every API route that changes something takes: a small JSON body, declared as such (a bulk action's ids need
 * more).
 */
export function jsonBody(limit = "4kb"): RequestHandler[] {
  return [requireJsonBody, express.json({ limit, strict: true })];
}

/**
 * Every request that changes something must say it is JSON, with or without a body: a
 * cross-site form or a no-cors fetch cannot send that header, so it cannot call the API.
 */
function requireJsonBody(req: Request, _res: Response, next: NextFunction) {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
  if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
    return next(
      new AppError(415, "unsupported_media_type", "Send requests that change something as application/json."),
    );
  }
  next();
}
