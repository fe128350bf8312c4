// Acting on a selection from the monitor's list, as HTML forms that work without a script:
// the list's form asks first (a page saying how many the action would touch and which it
// would skip, and why), and its "Retry these N" acts only while N is still the count.
// Then back to the list, the search kept, with what was done.
import { Router, type RequestHandler } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import { bulkAct, bulkActionFrom, idsFrom, type BulkResult, type BulkTarget } from "../lib/useCases/bulkActions.ts";
import { CountChangedError, ValidationError } from "../lib/platform/errors.ts";
import { countTasksByState } from "../lib/useCases/taskSearch.ts";
import { actorOf } from "./admin.ts";
import { countFrom, settleLetters } from "./monitorActions.ts";
import { taskFilterFrom } from "./query.ts";

/** The search fields a selection carries, and the list's order to come back to. */
const SEARCH = ["state", "breed", "id", "error", "from", "to"] as const;
const KEPT = [...SEARCH, "sort", "order"] as const;

export function bulkPageRoutes(deps: AppDeps, admin: RequestHandler[]) {
  const router = Router();

  router.post("/tasks/bulk", ...admin, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const back = new URLSearchParams();
    for (const name of KEPT) if (typeof body[name] === "string" && body[name]) back.set(name, body[name]);
    // Back to the list, the notice beside it (where the person pressed the button).
    const toList = (outcome: Record<string, string>) =>
      res.redirect(
        303,
        `/tasks?${new URLSearchParams([...back, ...Object.entries(outcome), ["at", "tasks-list"]])}#monitor-notice`,
      );
    try {
      const action = bulkActionFrom(body.action);
      const everything = body.scope === "search";
      const search = taskFilterFrom(body);
      const target: BulkTarget = everything
        ? { search: { ...search, cursor: undefined, before: undefined, order: undefined, sort: undefined } }
        : { ids: idsFrom(body.ids) };
      if (body.expected === undefined) {
        const result = await bulkAct(deps.tasks, action, target, { by: actorOf(req) });
        return void res.render("bulk-confirm", {
          title: action === "retry" ? "Retry tasks" : "Cancel tasks",
          result,
          everything,
          ids: "ids" in target ? target.ids : [],
          kept: [...back],
          backHref: `/tasks${back.size ? `?${back}` : ""}`,
        });
      }
      const result = await bulkAct(deps.tasks, action, target, {
        expected: countFrom(body.expected),
        by: actorOf(req),
      });
      await afterBulk(deps, result);
      const skipped = Object.values(result.skipped).reduce((a, b) => a + b, 0);
      toList({ bulk: action, done: String(result.done), skipped: String(skipped) });
    } catch (err) {
      if (err instanceof CountChangedError)
        return toList({ changed: String(err.matched), expected: String(err.expected) });
      if (err instanceof ValidationError && (err.fields.ids || err.fields.search))
        return toList({ refused: err.fields.ids ? "none-ticked" : "too-many" });
      throw err;
    }
  });

  return router;
}

/**
 * After a bulk action: the totals the next page shows include it, and dead letters of tasks sent again go (as after any
 * retry).
 */
export async function afterBulk(deps: AppDeps, result: BulkResult): Promise<void> {
  countTasksByState.forget(deps.data.search);
  deps.monitor.forget?.();
  if (result.action === "retry" && result.done > 0) await settleLetters(deps);
}
