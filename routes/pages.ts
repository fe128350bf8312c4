// The HTML pages: the form and gallery, the task monitor, and a task's own page.
import { Router, type Request, type RequestHandler } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import type { BreedCatalog } from "../lib/breeds.ts";
import { ConflictError, RateLimitedError, ValidationError } from "../lib/errors.ts";
import { clearPhotos, galleryPage } from "../lib/gallery.ts";
import { countTasksByState, listTasks } from "../lib/taskSearch.ts";
import { cancelTask, getTaskDetail, submitTask } from "../lib/useCases.ts";
import { isUuid, parseTaskInput } from "../lib/validation.ts";
import { TASK_STATES, toTaskView, type TaskView } from "../lib/shapes.ts";
import { queryText } from "./query.ts";

/** Long enough for a page's script to load and connect to /events. */
const PAGE_HOLD_MS = 15_000;

export function pageRoutes(deps: AppDeps, createLimit: RequestHandler, admin: RequestHandler[] = []) {
  const router = Router();

  // Where this page's live updates start: events from here on are replayed to it when its
  // script connects, so it need not fetch itself again to catch up. The id is taken while
  // this web hears every event, and before reading what the page shows.
  router.use(async (req, res, next) => {
    if (req.method !== "GET") return next();
    await deps.hub.hold(PAGE_HOLD_MS);
    res.locals.liveFrom = `${deps.hub.epoch}-${deps.hub.lastId}`;
    next();
  });

  router.get("/", async (req, res) => {
    res.render("index", await homeContext(deps, req));
  });

  // A person over the limit stays on the form, their choices kept, told when they can send it.
  const formLimit: RequestHandler = (req, res, next) =>
    createLimit(req, res, (err?: unknown) => {
      if (!(err instanceof RateLimitedError)) return next(err);
      res.set("Retry-After", String(err.retryAfterSeconds));
      homeContext(deps, req)
        .then((context) => res.status(429).render("index", { ...context, form: formOf(req.body), flash: { kind: "warning", text: err.message } }))
        .catch(next);
    });

  router.post("/tasks", formLimit, async (req, res) => {
    const catalog = await deps.breeds.get();
    try {
      const input = parseTaskInput(req.body, catalog, "form");
      const { task } = await submitTask(deps.tasks, input);
      res.redirect(303, `/?submitted=${task.id}`);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      // Post/redirect/get: the form comes back at "/", where a reload does not post it again;
      // the home page checks what was typed and says what is wrong beside each field.
      res.redirect(303, `/?${draftParams(req.body)}`);
    }
  });

  router.post("/photos/clear", ...admin, async (req, res) => {
    // The checkbox is the confirmation that works without JavaScript.
    if (req.body?.confirm !== "yes") throw new ValidationError({ confirm: "Tick “Yes, delete every photo” to clear the gallery." });
    const deleted = await clearPhotos(deps.tasks);
    res.redirect(303, `/?cleared=${deleted}`);
  });

  router.get("/tasks", async (req, res) => {
    const filter = {
      state: queryText(req.query.state)?.toUpperCase(),
      breed: queryText(req.query.breed),
      id: queryText(req.query.id),
      error: queryText(req.query.error, 200),
      from: queryText(req.query.from),
      to: queryText(req.query.to),
      cursor: queryText(req.query.cursor),
    };
    const [{ tasks, nextCursor, total }, counts] = await Promise.all([listTasks(deps.db, { ...filter, limit: 25 }), countTasksByState(deps.db)]);
    const allTasks = Object.values(counts).reduce((sum, n) => sum + n, 0);
    res.render("tasks", { title: "Tasks", tasks, nextCursor, total, counts, allTasks, filter, states: TASK_STATES, overview: await deps.monitor(), workers: deps.workers.list() });
  });

  router.get("/tasks/:id", async (req, res) => {
    const detail = await getTaskDetail(deps.db, req.params.id ?? "");
    const notice = req.query.cancel === "too-late" ? tooLateToCancel(detail.task) : undefined;
    res.render("task", { title: `Task ${detail.task.id.slice(0, 8)}`, ...detail, notice });
  });

  router.post("/tasks/:id/cancel", ...admin, async (req, res) => {
    const id = String(req.params.id ?? "");
    try {
      await cancelTask(deps.tasks, id);
      res.redirect(303, `/tasks/${id}`);
    } catch (err) {
      // A worker took it (or it finished) between the page and the click: news, not an error.
      if (!(err instanceof ConflictError)) throw err;
      res.redirect(303, `/tasks/${id}?cancel=too-late`);
    }
  });

  return router;
}

/** Why a cancel did nothing, in the words of what happened to the task meanwhile. */
function tooLateToCancel(task: TaskView): string | undefined {
  const happened: Partial<Record<TaskView["state"], string>> = {
    STARTED: "a worker had already started it",
    SUCCESS: "it had already finished",
    FAILURE: "it had already failed",
    REVOKED: "it was already cancelled",
  };
  const what = happened[task.state];
  return what ? `Not cancelled: ${what} when your cancel arrived.` : undefined;
}

/** What the person typed, to show it again (cut short: it travels in a URL). */
function formOf(fields: Record<string, unknown> | undefined) {
  return { breed: String(fields?.breed ?? "").slice(0, 100), limit: String(fields?.limit ?? "").slice(0, 20) };
}

/** The fields of a refused form as they came (a repeated field stays repeated, so it is refused again for the same reason), each cut short. */
function draftParams(body: Record<string, unknown> | undefined): URLSearchParams {
  const params = new URLSearchParams();
  for (const field of ["breed", "subBreed", "limit"]) {
    const value = body?.[field];
    for (const item of Array.isArray(value) ? value.slice(0, 5) : [value]) {
      if (typeof item === "string") params.append(field, item.slice(0, 100));
    }
    // A missing field comes back empty, so "/" still knows a form was refused.
    if (field !== "subBreed" && !params.has(field)) params.append(field, "");
  }
  return params;
}

/** A form sent back to "/" after it failed (or a link that fills it in): what it holds, and what is wrong with it. */
function draftOf(req: Request, catalog: BreedCatalog) {
  if (req.query.breed === undefined && req.query.limit === undefined) return null;
  const form = formOf(req.query as Record<string, unknown>);
  try {
    parseTaskInput(req.query, catalog, "form");
    return { form, errors: {} };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return { form, errors: err.fields };
  }
}

async function homeContext(deps: AppDeps, req: Request) {
  const page = Math.max(1, Math.min(10_000, Number.parseInt(queryText(req.query.page) ?? "1", 10) || 1));
  const [catalog, gallery, recent, flash] = await Promise.all([deps.breeds.get(), galleryPage(deps.db, page), listTasks(deps.db, { limit: 10 }, "none"), flashMessage(deps, req)]);
  // After a submit, keep the person's choice in the form for the next one.
  const last = flash?.task;
  const draft = draftOf(req, catalog);
  return {
    title: "GenDog",
    breedOptions: catalog.options,
    form: draft?.form ?? (last ? { breed: last.subBreed ? `${last.breed}/${last.subBreed}` : last.breed, limit: String(last.limit) } : { breed: "", limit: "5" }),
    errors: draft?.errors ?? {},
    flash,
    gallery,
    recentTasks: recent.tasks,
  };
}

interface Flash {
  kind: "success" | "warning" | "info" | "danger";
  text: string;
  taskId?: string;
  task?: TaskView;
}

/** The banner after a submit follows its task (static/app.js refreshes it), so it never says "queued" of a finished one. */
function submittedNews(task: TaskView): Pick<Flash, "kind" | "text"> {
  const what = `${task.limit} × ${task.label} (task ${task.id.slice(0, 8)})`;
  if (task.waitingForQueue) return { kind: "warning", text: `Saved ${what}, waiting for the job queue: it runs as soon as RabbitMQ is reachable.` };
  switch (task.state) {
    case "SUCCESS":
      return { kind: "success", text: `Done: ${task.photoCount} photo${task.photoCount === 1 ? "" : "s"} of ${task.label} fetched (task ${task.id.slice(0, 8)}).` };
    case "FAILURE":
      return { kind: "danger", text: `Could not fetch ${what}: ${task.error ?? "it failed"}.` };
    case "REVOKED":
      return { kind: "info", text: `Cancelled ${what}.` };
    case "RETRY":
      return { kind: "info", text: `Fetching ${what}: dog.ceo did not answer well, trying again shortly.` };
    default:
      return { kind: "info", text: `Fetching ${what}…` };
  }
}

async function flashMessage(deps: AppDeps, req: Request): Promise<Flash | null> {
  const submitted = queryText(req.query.submitted);
  if (submitted && isUuid(submitted)) {
    const row = await deps.db.task.findUnique({ where: { id: submitted } });
    if (!row) return null;
    const task = toTaskView(row);
    return { taskId: task.id, task, ...submittedNews(task) };
  }
  const cleared = queryText(req.query.cleared);
  if (cleared && /^\d+$/.test(cleared)) return { kind: "info", text: `Cleared ${cleared} photo${cleared === "1" ? "" : "s"} from the gallery.` };
  return null;
}
