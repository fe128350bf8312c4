// The monitor's actions in the JSON API: retry what failed, dead letters, purge and pause.
// Each bulk action is a dry run without `expected` (it says how many it would touch) and
// acts only while `expected` is still that count (409 count_changed with `matched` if not).
import { Router, type RequestHandler } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import {
  discardAllDeadLetters,
  discardDeadLetter,
  discardSettledLetters,
  listDeadLetters,
  purgeWorkQueue,
  requeueAllDeadLetters,
  requeueDeadLetter,
} from "../lib/useCases/deadLetters.ts";
import { bulkAct, bulkActionFrom, idsFrom } from "../lib/useCases/bulkActions.ts";
import { ValidationError } from "../lib/platform/errors.ts";
import { failureGroups, retryGroup, retryTask } from "../lib/useCases/failures.ts";
import { windowFrom } from "../lib/useCases/history.ts";
import { listAudit } from "../lib/useCases/audit.ts";
import { stopTask } from "../lib/useCases/tasks.ts";
import { actorOf } from "./admin.ts";
import { jsonBody } from "./api.ts";
import { afterBulk } from "./bulkPages.ts";
import { controlWorker, countFrom, settleLetters, tellStop } from "./monitorActions.ts";
import { taskFilterFrom } from "./query.ts";

export function monitorApiRoutes(deps: AppDeps, admin: RequestHandler[]) {
  const router = Router();
  const json = jsonBody();
  const letters = { ...deps.tasks, queue: deps.queue };
  const expectedIn = (body: Record<string, unknown> | undefined) =>
    body?.expected === undefined ? undefined : countFrom(body.expected);
  const limitIn = (value: unknown, max: number, fallback: number) =>
    Math.min(max, Math.max(1, Number(value) || fallback));

  router.post("/tasks/:id/retry", ...json, ...admin, async (req, res) => {
    const { task, queued } = await retryTask(deps.tasks, String(req.params.id), actorOf(req));
    await settleLetters(deps);
    res.status(202).json({ ...task, queued });
  });

  // {action: "retry" | "cancel", ids: [...] | search: {state, breed, id, error, from, to}, expected?}
  // 10,000 ids of 36 characters, quoted, with commas: under 400 KB.
  router.post("/tasks/bulk", ...jsonBody("512kb"), ...admin, async (req, res) => {
    const action = bulkActionFrom(req.body?.action);
    const search = req.body?.search;
    const target =
      search !== undefined && search !== null && typeof search === "object" && !Array.isArray(search)
        ? { search: taskFilterFrom(search) }
        : { ids: idsFrom(req.body?.ids) };
    const expected = expectedIn(req.body);
    const result = await bulkAct(deps.tasks, action, target, { expected, by: actorOf(req) });
    if (expected !== undefined) await afterBulk(deps, result);
    res.json({ ...result, dryRun: expected === undefined });
  });

  // Stops a running task; 409 (and nothing done) if it is not running any more.
  router.post("/tasks/:id/stop", ...json, ...admin, async (req, res) => {
    const { task, workerTold } = await stopTask(deps.tasks, String(req.params.id), actorOf(req), tellStop(deps));
    res.json({ ...task, workerTold });
  });

  router.get("/audit", async (req, res) => {
    res.json(
      await listAudit(deps.data.audit, {
        page: req.query.page,
        action: req.query.action,
        limit: limitIn(req.query.limit, 100, 25),
      }),
    );
  });

  router.get("/history", async (req, res) => {
    res.json(await deps.history(windowFrom(req.query.window)));
  });

  router.get("/failures", async (req, res) => {
    res.json({ groups: await failureGroups(deps.data, limitIn(req.query.limit, 100, 10)) });
  });

  router.post("/failures/retry", ...json, ...admin, async (req, res) => {
    const fingerprint = typeof req.body?.fingerprint === "string" ? req.body.fingerprint : "";
    if (!fingerprint)
      throw new ValidationError({ fingerprint: "Say which group: its fingerprint, as GET /api/failures lists it." });
    const expected = expectedIn(req.body);
    const result = await retryGroup(deps.tasks, fingerprint, { expected, by: actorOf(req) });
    if (result.retried > 0) await settleLetters(deps);
    res.json({ fingerprint, ...result, dryRun: expected === undefined });
  });

  router.get("/dead-letters", async (req, res) => {
    res.json(await listDeadLetters(deps, limitIn(req.query.limit, 1000, 50)));
  });

  router.post("/dead-letters/requeue", ...json, ...admin, async (req, res) => {
    const expected = expectedIn(req.body);
    if (expected === undefined)
      return void res.json({ matched: (await deps.queue.readMessages("dead", 0)).total, dryRun: true });
    res.json({ ...(await requeueAllDeadLetters(letters, expected, actorOf(req))), dryRun: false });
  });

  router.post("/dead-letters/discard-settled", ...json, ...admin, async (req, res) => {
    res.json(await discardSettledLetters(deps, actorOf(req)));
  });

  router.post("/dead-letters/discard", ...json, ...admin, async (req, res) => {
    const expected = expectedIn(req.body);
    if (expected === undefined)
      return void res.json({ matched: (await deps.queue.readMessages("dead", 0)).total, dryRun: true });
    res.json({ ...(await discardAllDeadLetters(deps, expected, actorOf(req))), dryRun: false });
  });

  router.post("/dead-letters/:key/requeue", ...json, ...admin, async (req, res) => {
    const requeued = await requeueDeadLetter(letters, String(req.params.key), actorOf(req));
    await settleLetters(deps);
    res.json(requeued);
  });

  router.post("/dead-letters/:key/discard", ...json, ...admin, async (req, res) => {
    res.json(await discardDeadLetter(deps, String(req.params.key), actorOf(req)));
  });

  for (const action of ["pause", "resume"] as const) {
    router.post(`/workers/${action}`, ...json, ...admin, async (req, res) => {
      res
        .status(202)
        .json({ action, worker: (await controlWorker(deps, action, req.body?.worker, actorOf(req))) ?? "all" });
    });
  }

  router.post("/queue/purge", ...json, ...admin, async (req, res) => {
    const expected = expectedIn(req.body);
    if (expected === undefined)
      return void res.json({ matched: (await deps.queue.readMessages("work", 0)).total, dryRun: true });
    res.json({ ...(await purgeWorkQueue(letters, expected, actorOf(req))), dryRun: false });
  });

  return router;
}
