// The monitor's buttons as HTML forms: retry a task or a group of failures, the dead
// letters' page and its actions, and purging the work queue. Each action is a
// post/redirect/get: what happened, or why nothing did, is told on the page it came from,
// so a reload never presses the button again. The JSON API has the same actions
// (routes/monitorApi.ts).
import { Router, type RequestHandler, type Response } from "express";
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
import { AUDIT_ACTIONS, listAudit, recordAction } from "../lib/useCases/audit.ts";
import { controlKey, signControl, signStop, WORKER_ID } from "../lib/monitor/controlMessages.ts";
import {
  AppError,
  ConflictError,
  CountChangedError,
  NotFoundError,
  QueueUnavailableError,
  ValidationError,
} from "../lib/platform/errors.ts";
import { retryGroup, retryTask } from "../lib/useCases/failures.ts";
import { countTasksByState } from "../lib/useCases/taskSearch.ts";
import { stopTask } from "../lib/useCases/tasks.ts";
import { actorOf } from "./admin.ts";

/** Dead letters shown on the page; the rest are counted. */
const LETTERS_SHOWN = 100;

export function monitorActionRoutes(deps: AppDeps, admin: RequestHandler[]) {
  const router = Router();
  const letters = { ...deps.tasks, queue: deps.queue };

  router.post("/tasks/:id/retry", ...admin, async (req, res) => {
    const id = String(req.params.id ?? "");
    try {
      await retryTask(deps.tasks, id, actorOf(req));
      await settleLetters(deps);
      res.redirect(303, `/tasks/${id}?retry=sent`);
    } catch (err) {
      // Someone else retried it first, or it is running: news, not an error.
      if (!(err instanceof ConflictError)) throw err;
      res.redirect(303, `/tasks/${id}?retry=too-late`);
    }
  });

  router.post("/tasks/:id/stop", ...admin, async (req, res) => {
    const id = String(req.params.id ?? "");
    try {
      await stopTask(deps.tasks, id, actorOf(req), tellStop(deps));
      res.redirect(303, `/tasks/${id}?stop=stopped`);
    } catch (err) {
      // It finished (or was stopped) between the page and the click: news, not an error.
      if (!(err instanceof ConflictError)) throw err;
      res.redirect(303, `/tasks/${id}?stop=too-late`);
    }
  });

  router.get("/audit", async (req, res) => {
    const trail = await listAudit(deps.data.audit, { page: req.query.page, action: req.query.action });
    const link = (page: number) => {
      const query = new URLSearchParams({
        ...(trail.action ? { action: trail.action } : {}),
        ...(page > 1 ? { page: String(page) } : {}),
      }).toString();
      return query ? `/audit?${query}` : "/audit";
    };
    res.render("audit", {
      title: "Audit trail",
      ...trail,
      actions: AUDIT_ACTIONS,
      prev: trail.page > 1 ? link(trail.page - 1) : null,
      next: trail.hasNext ? link(trail.page + 1) : null,
    });
  });

  router.post("/failures/retry", ...admin, async (req, res) => {
    const expected = countFrom(req.body?.expected);
    await told(deps, res, "/tasks", "failures", async () => {
      const { retried } = await retryGroup(deps.tasks, String(req.body?.fingerprint ?? ""), {
        expected,
        by: actorOf(req),
      });
      await settleLetters(deps);
      return { retried };
    });
  });

  router.post("/queue/purge", ...admin, async (req, res) => {
    const expected = countFrom(req.body?.expected);
    await told(deps, res, "/tasks", "queue-panel", async () => {
      const { removed, cancelled } = await purgeWorkQueue(letters, expected, actorOf(req));
      return { purged: removed, cancelled };
    });
  });

  for (const action of ["pause", "resume"] as const) {
    router.post(`/workers/${action}`, ...admin, async (req, res) => {
      const worker = await controlWorker(deps, action, req.body?.worker, actorOf(req));
      // Back where the button was: the workers page (its forms say so), or the monitor's panel.
      const back = req.body?.from === "workers" ? "/workers" : "/tasks";
      const told = {
        [action === "pause" ? "paused" : "resumed"]: worker ?? "all",
        ...(back === "/tasks" ? { at: "workers-panel" } : {}),
      };
      res.redirect(303, `${back}?${new URLSearchParams(told)}${back === "/tasks" ? "#monitor-notice" : ""}`);
    });
  }

  router.get("/dead-letters", async (req, res) => {
    const connected = deps.queue.isConnected();
    const {
      total,
      settled,
      letters: shown,
    } = connected
      ? await listDeadLetters(deps, LETTERS_SHOWN).catch(unavailable)
      : { total: 0, settled: 0, letters: [] };
    res.render("dead-letters", {
      title: "Dead letters",
      total,
      settled,
      letters: shown,
      connected,
      queueName: deps.queue.deadLetterQueue,
      notice: monitorNotice(req.query),
    });
  });

  router.post("/dead-letters/requeue", ...admin, async (req, res) => {
    const expected = countFrom(req.body?.expected);
    await told(deps, res, "/dead-letters", "", async () => {
      const { requeued, settled, kept } = await requeueAllDeadLetters(letters, expected, actorOf(req));
      return { requeued, settled, kept };
    });
  });

  router.post("/dead-letters/discard-settled", ...admin, async (req, res) => {
    await told(deps, res, "/dead-letters", "", async () => ({
      discarded: (await discardSettledLetters(deps, actorOf(req))).removed,
    }));
  });

  router.post("/dead-letters/discard", ...admin, async (req, res) => {
    const expected = countFrom(req.body?.expected);
    await told(deps, res, "/dead-letters", "", async () => ({
      discarded: (await discardAllDeadLetters(deps, expected, actorOf(req))).removed,
    }));
  });

  router.post("/dead-letters/:key/requeue", ...admin, async (req, res) => {
    await told(deps, res, "/dead-letters", "", async () => {
      await requeueDeadLetter(letters, String(req.params.key), actorOf(req));
      await settleLetters(deps);
      return { requeued: 1 };
    });
  });

  router.post("/dead-letters/:key/discard", ...admin, async (req, res) => {
    await told(deps, res, "/dead-letters", "", async () => ({
      discarded: (await discardDeadLetter(deps, String(req.params.key), actorOf(req))).removed,
    }));
  });

  return router;
}

/**
 * Tells one worker (a live one the registry knows) or all of them to pause or resume
 * taking jobs, signed so the workers know it came from a web that checked who asked.
 * Best effort, like every event: the workers' heartbeats show whether it took.
 */
export async function controlWorker(
  deps: AppDeps,
  action: "pause" | "resume",
  worker: unknown,
  by: string,
): Promise<string | undefined> {
  const key = controlKey(deps.config);
  if (!key)
    throw new AppError(
      409,
      "control_off",
      "Pausing is off: set CONTROL_SECRET (or ADMIN_PASSWORD) on the web and every worker, so the workers can tell this web's messages from anyone else's.",
    );
  // Absent or "all" is every worker; anything else must be a worker's id (a stray 1, "" or {} once paused them all).
  if (worker !== undefined && worker !== "all" && (typeof worker !== "string" || !WORKER_ID.test(worker)))
    throw new ValidationError({
      worker: "Name a worker by its id, as the workers panel shows it, or leave it out for every worker.",
    });
  const id = worker === undefined || worker === "all" ? undefined : worker;
  if (id && !deps.workers.list().some((w) => w.id === id && w.status === "alive"))
    throw new NotFoundError("There is no live worker with that id.");
  deps.queue.publishEvent(`control.${action}`, signControl(key, action, id));
  await recordAction(deps.data.audit, { by, action, target: id ?? "all" });
  return id;
}

/**
 * Tells the workers to abandon a stopped task's run, signed like pause and resume; false when there is no key to sign
 * with.
 */
export function tellStop(deps: AppDeps): (taskId: string) => boolean {
  return (taskId) => {
    const key = controlKey(deps.config);
    if (!key) return false;
    deps.queue.publishEvent("control.stop", signStop(key, taskId));
    return true;
  };
}

/**
 * Runs an action and sends the person back to `page`, with what happened or why nothing did:
 * on the monitor, in the panel `at` whose button they pressed, with the numbers read anew.
 */
async function told(
  deps: AppDeps,
  res: Response,
  page: string,
  at: NoticePanel | "",
  action: () => Promise<Record<string, number>>,
) {
  let outcome: Record<string, string>;
  try {
    outcome = Object.fromEntries(Object.entries(await action()).map(([k, v]) => [k, String(v)]));
  } catch (err) {
    if (err instanceof CountChangedError) outcome = { changed: String(err.matched), expected: String(err.expected) };
    else if (err instanceof NotFoundError) outcome = { refused: "gone" };
    else if (err instanceof ConflictError) outcome = { refused: "not-retriable" };
    else if (err instanceof QueueUnavailableError) outcome = { refused: "broker" };
    else throw err;
  } finally {
    countTasksByState.forget(deps.data.search);
    deps.monitor.forget?.();
  }
  res.redirect(303, `${page}?${new URLSearchParams(at ? { ...outcome, at } : outcome)}${at ? "#monitor-notice" : ""}`);
}

function unavailable(err: unknown): { total: number; settled: number; letters: [] } {
  if (err instanceof QueueUnavailableError) return { total: 0, settled: 0, letters: [] };
  throw err;
}

/**
 * After tasks were sent again, their dead letters go (they would only repeat the rerun). Best
 * effort: with the broker away the retry still happened, and the letters show as settled.
 */
export async function settleLetters(deps: AppDeps): Promise<void> {
  await discardSettledLetters(deps).catch((err: unknown) => {
    if (!(err instanceof QueueUnavailableError)) throw err;
  });
}

const REFUSALS: Record<string, string> = {
  gone: "Nothing was done: that message is not in the queue any more (someone requeued or discarded it).",
  "not-retriable":
    "Not requeued: its task is no longer FAILURE or REVOKED (sent again already, or finished), or it names no task. Discard it instead.",
  broker: "Nothing was done: RabbitMQ is not reachable right now. Try again once it is back.",
  "none-ticked": "Nothing was done: tick the tasks to act on, or choose every task matching the search.",
  "too-many": "Nothing was done: one action takes at most 10,000 tasks. Narrow the search and try again.",
};

/** The monitor's panels an action's notice can be shown in (beside the button pressed). */
const NOTICE_PANELS = ["failures", "queue-panel", "workers-panel", "tasks-list"] as const;
type NoticePanel = (typeof NOTICE_PANELS)[number];

/** The banner after one of the monitor's actions, from the redirect's query; `at` names the panel it goes in. */
export function monitorNotice(
  query: Record<string, unknown>,
): { kind: string; text: string; at?: NoticePanel } | undefined {
  const notice = noticeText(query);
  const at = NOTICE_PANELS.find((panel) => panel === query.at);
  return notice && at ? { ...notice, at } : notice;
}

function noticeText(query: Record<string, unknown>): { kind: string; text: string } | undefined {
  const count = (value: unknown) => (typeof value === "string" && /^\d{1,9}$/.test(value) ? Number(value) : undefined);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const control = (name: "paused" | "resumed") => {
    const who = query[name];
    if (typeof who !== "string" || !/^[\w.:@-]{1,100}$/.test(who)) return undefined;
    const verb = name === "paused" ? "pause: they finish the jobs in hand and take no new ones" : "resume taking jobs";
    return {
      kind: "info",
      text: `Told ${who === "all" ? "every worker" : `worker ${who}`} to ${verb}. Each worker's status shows when it took.`,
    };
  };
  const told = control("paused") ?? control("resumed");
  if (told) return told;
  const [retried, changed, expected, purged, cancelled, requeued, settled, kept, discarded] = [
    "retried",
    "changed",
    "expected",
    "purged",
    "cancelled",
    "requeued",
    "settled",
    "kept",
    "discarded",
  ].map((name) => count(query[name]));
  if (typeof query.refused === "string" && Object.hasOwn(REFUSALS, query.refused))
    return { kind: "warning", text: REFUSALS[query.refused]! };
  if (changed !== undefined && expected !== undefined)
    return {
      kind: "warning",
      text: `Nothing was done: you confirmed ${expected}, but ${changed} match now. Check the new count and press again.`,
    };
  if ((query.bulk === "retry" || query.bulk === "cancel") && count(query.done) !== undefined) {
    const [done, skipped] = [count(query.done)!, count(query.skipped) ?? 0];
    const verb = query.bulk === "retry" ? "Sent {} again, each with a new retry budget." : "Cancelled {}.";
    const why =
      query.bulk === "retry"
        ? "only FAILURE or REVOKED tasks can be retried"
        : "only PENDING or RETRY tasks can be cancelled";
    return {
      kind: done > 0 ? "success" : "warning",
      text: `${verb.replace("{}", plural(done, "task"))}${skipped ? ` ${skipped} skipped: ${why} (or it changed meanwhile).` : ""}`,
    };
  }
  if (retried !== undefined)
    return { kind: "success", text: `Sent ${plural(retried, "failed task")} again, each with a new retry budget.` };
  if (purged !== undefined)
    return {
      kind: "success",
      text: `Purged ${plural(purged, "job")} from the work queue; ${plural(cancelled ?? 0, "task")} cancelled.`,
    };
  if (requeued !== undefined)
    return {
      kind: "success",
      text: `Requeued ${plural(requeued, "dead letter")}: their tasks run again.${settled ? ` ${plural(settled, "more letter")} went with them: their tasks had been sent again or had finished already.` : ""}${kept ? ` ${kept} stayed: their tasks are gone or they name none (discard them).` : ""}`,
    };
  if (discarded !== undefined) return { kind: "success", text: `Discarded ${plural(discarded, "dead letter")}.` };
  return undefined;
}

/** The count a person confirmed: a whole number, or the request is refused. */
export function countFrom(value: unknown): number {
  const count =
    typeof value === "number" ? value : typeof value === "string" && /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(count) || count < 0)
    throw new ValidationError({ expected: "Confirm the count you saw: a whole number." });
  return count;
}
