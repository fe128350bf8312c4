// The monitor's buttons as HTML forms: retry a task or a group of failures. Each is a
// post/redirect/get: the result or the refusal is told on the page it came from, so a
// reload never presses the button again. The JSON API has the same actions (routes/api.ts).
import { Router, type RequestHandler } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import { ConflictError, CountChangedError, ValidationError } from "../lib/errors.ts";
import { retryGroup, retryTask } from "../lib/failures.ts";
import { actorOf } from "./admin.ts";

export function monitorActionRoutes(deps: AppDeps, admin: RequestHandler[]) {
  const router = Router();

  router.post("/tasks/:id/retry", ...admin, async (req, res) => {
    const id = String(req.params.id ?? "");
    try {
      await retryTask(deps.tasks, id, actorOf(req));
      res.redirect(303, `/tasks/${id}?retry=sent`);
    } catch (err) {
      // Someone else retried it first, or it is running: news, not an error.
      if (!(err instanceof ConflictError)) throw err;
      res.redirect(303, `/tasks/${id}?retry=too-late`);
    }
  });

  router.post("/failures/retry", ...admin, async (req, res) => {
    const fingerprint = String(req.body?.fingerprint ?? "");
    const expected = countFrom(req.body?.expected);
    try {
      const { retried } = await retryGroup(deps.tasks, fingerprint, { expected, by: actorOf(req) });
      res.redirect(303, `/tasks?${new URLSearchParams({ retried: String(retried) })}#failures`);
    } catch (err) {
      if (!(err instanceof CountChangedError)) throw err;
      res.redirect(303, `/tasks?${new URLSearchParams({ changed: String(err.matched), expected: String(expected) })}#failures`);
    }
  });

  return router;
}

/** The count a person confirmed: a whole number, or the request is refused. */
export function countFrom(value: unknown): number {
  const count = typeof value === "number" ? value : typeof value === "string" && /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(count) || count < 0) throw new ValidationError({ expected: "Confirm the count you saw: a whole number." });
  return count;
}
