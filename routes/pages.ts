// The HTML pages: the form and gallery, the task monitor, and a task's own page.
import { Router, type RequestHandler } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import { ConflictError, DatabaseUnavailableError, RateLimitedError, ValidationError } from "../lib/platform/errors.ts";
import { clearPhotos } from "../lib/useCases/gallery.ts";
import {
  countSearchByState,
  countTasksByState,
  listTasks,
  TASK_SORTS,
  totalOf,
  type TaskFilter,
} from "../lib/useCases/taskSearch.ts";
import { cancelTask, getTaskDetail, submitTask } from "../lib/useCases/tasks.ts";
import { failureGroups } from "../lib/useCases/failures.ts";
import { WINDOW_LABELS, windowFrom } from "../lib/useCases/history.ts";
import { CHART, chartOf } from "../lib/useCases/historyChart.ts";
import { monitorNotice } from "./monitorActions.ts";
import { actorOf } from "./admin.ts";
import { parseTaskInput } from "../lib/lifecycle/validation.ts";
import { TASK_STATES, type TaskView } from "../lib/lifecycle/shapes.ts";
import { draftParams, formOf, homeContext, waitsForWorker } from "./home.ts";
import { workerAvailability } from "../lib/monitor/workerAvailability.ts";
import { panelsDigest } from "../lib/monitor/feed.ts";
import { queryText, taskFilterFrom } from "./query.ts";

/** The list's sortable columns as the form names them. */
const SORT_LABELS: Record<keyof typeof TASK_SORTS, string> = {
  created: "created",
  state: "state",
  breed: "breed",
  limit: "limit",
  attempts: "attempts",
  photos: "photos",
};

/** Long enough for a page's script to load and connect to /events. */
const PAGE_HOLD_MS = 15_000;

export function pageRoutes(deps: AppDeps, createLimit: RequestHandler, admin: RequestHandler[] = []) {
  const router = Router();
  router.use(liveFrom(deps));
  router.get("/", async (req, res) => {
    res.render("index", await homeContext(deps, req));
  });
  router.post("/tasks", formLimit(createLimit), submitForm(deps));
  router.post("/photos/clear", ...admin, clearGallery(deps));
  router.get("/tasks", monitorPage(deps));
  router.get("/workers", async (req, res) => {
    const overview = await deps.monitor();
    const workers = deps.workers.list();
    const panels = panelsDigest(overview, workers);
    res.render("workers", { title: "Workers", workers, panels, notice: monitorNotice(req.query) });
  });
  router.get("/tasks/:id", taskPage(deps));
  router.post("/tasks/:id/cancel", ...admin, cancelForm(deps));
  return router;
}

/**
 * Where this page's live updates start: events from here on are replayed to it when its
 * script connects, so it need not fetch itself again to catch up. The id is taken while
 * this web hears every event, and before reading what the page shows.
 */
function liveFrom(deps: AppDeps): RequestHandler {
  return async (req, res, next) => {
    if (req.method !== "GET") return next();
    await deps.hub.hold(PAGE_HOLD_MS);
    res.locals.liveFrom = `${deps.hub.epoch}-${deps.hub.lastId}`;
    next();
  };
}

/**
 * A person over the limit goes back to the form at "/" (post/redirect/get, like a refused
 * form), their choices kept, told when they can send it: the page says the time left
 * whenever it is drawn, and counts it down.
 */
function formLimit(createLimit: RequestHandler): RequestHandler {
  return (req, res, next) =>
    createLimit(req, res, (err?: unknown) => {
      if (!(err instanceof RateLimitedError)) return next(err);
      const params = draftParams(req.body);
      params.set("limited", String(Date.now() + err.retryAfterSeconds * 1000));
      res.set("Retry-After", String(err.retryAfterSeconds)).redirect(303, `/?${params}`);
    });
}

/** The home page's form: a new task, then back to "/" (post/redirect/get). */
function submitForm(deps: AppDeps): RequestHandler {
  return async (req, res) => {
    const catalog = await deps.breeds.get();
    try {
      const input = parseTaskInput(req.body, catalog, "form");
      const { task } = await submitTask(deps.tasks, input);
      res.redirect(303, `/?submitted=${task.id}`);
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) {
        // The form stays as it was sent, to send again; nothing on this page reads the database.
        res.set("Retry-After", String(err.retryAfterSeconds));
        return res.status(503).render("unavailable", {
          title: "GenDog",
          message: err.message,
          breedOptions: catalog.options,
          form: formOf(req.body),
          errors: {},
        });
      }
      if (!(err instanceof ValidationError)) throw err;
      // Post/redirect/get: the form comes back at "/", where a reload does not post it again;
      // the home page checks what was typed and says what is wrong beside each field.
      res.redirect(303, `/?${draftParams(req.body)}`);
    }
  };
}

function clearGallery(deps: AppDeps): RequestHandler {
  return async (req, res) => {
    // The checkbox is the confirmation that works without JavaScript.
    if (req.body?.confirm !== "yes")
      throw new ValidationError({ confirm: "Tick “Yes, delete every photo” to clear the gallery." });
    const deleted = await clearPhotos(deps.tasks);
    res.redirect(303, `/?cleared=${deleted}`);
  };
}

/** /tasks: the monitor, a search of the tasks with the queue, the workers, the failures and the history. */
function monitorPage(deps: AppDeps): RequestHandler {
  return async (req, res) => {
    const asked = taskFilterFrom(req.query);
    // The form's state list is upper case; a typed ?state=failure means the same.
    const filter = { ...asked, state: asked.state?.toUpperCase() };
    const notice = monitorNotice(req.query);
    const [found, failures, history] = await Promise.all([
      searchPage(deps, filter),
      // Counted on every view, not cached: a button must offer the count a retry will find
      // (the (state, error) index keeps it cheap).
      failureGroups(deps.data, 5),
      deps.history(windowFrom(req.query.window)),
    ]);
    const { tasks, nextCursor, prevCursor, total, offset, counts, errors } = found;
    const overview = await deps.monitor();
    const workers = deps.workers.list();
    const keep = { ...filter, window: queryText(req.query.window) };
    // A refused search is still the search page: the filter as typed, what is wrong beside its field.
    if (errors) res.status(400);
    res.render("tasks", {
      title: "Tasks",
      tasks,
      total,
      offset,
      errors: errors ?? {},
      links: pageLinks(keep, nextCursor, prevCursor),
      stateLinks: stateLinks(keep),
      counts,
      allTasks: totalOf(counts),
      filter,
      states: TASK_STATES,
      overview,
      workers,
      panels: panelsDigest(overview, workers),
      failures,
      history,
      chart: chartOf(history),
      chartSize: CHART,
      windowLabels: WINDOW_LABELS,
      sortLabels: SORT_LABELS,
      notice,
    });
  };
}

/** A task's own page, with what became of a button pressed on it. */
function taskPage(deps: AppDeps): RequestHandler<{ id: string }> {
  return async (req, res) => {
    const detail = await getTaskDetail(deps.data.tasks, req.params.id ?? "", deps.workers);
    const notice =
      req.query.cancel === "too-late"
        ? tooLateToCancel(detail.task)
        : (stopNotice(req.query.stop, detail.task) ?? retryNotice(req.query.retry, detail.task));
    const workers = workerAvailability(deps.workers.list());
    res.render("task", {
      title: `Task ${detail.task.id.slice(0, 8)}`,
      ...detail,
      notice,
      workers,
      idle: waitsForWorker(detail.task, workers),
    });
  };
}

function cancelForm(deps: AppDeps): RequestHandler<{ id: string }> {
  return async (req, res) => {
    const id = String(req.params.id ?? "");
    try {
      await cancelTask(deps.tasks, id, actorOf(req));
      res.redirect(303, `/tasks/${id}`);
    } catch (err) {
      // A worker took it (or it finished) between the page and the click: news, not an error.
      if (!(err instanceof ConflictError)) throw err;
      res.redirect(303, `/tasks/${id}?cancel=too-late`);
    }
  };
}

/** A page of the monitor's search with its totals by state, or what is wrong with the search. */
async function searchPage(deps: AppDeps, filter: TaskFilter) {
  try {
    const [page, counts] = await Promise.all([
      listTasks(deps.data.search, { ...filter, limit: 25 }),
      countSearchByState(deps.data.search, filter),
    ]);
    return { ...page, counts, errors: undefined };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const counts = await countTasksByState(deps.data.search);
    return { tasks: [], nextCursor: null, prevCursor: null, total: 0, offset: 0, counts, errors: err.fields };
  }
}

/** Each state tag's link: the same search in that state (or any state), from its first page. */
function stateLinks(filter: Record<string, string | undefined>): Record<string, string> {
  const href = (state: string | undefined) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...filter, state, cursor: undefined, before: undefined }))
      if (value) params.set(name, value);
    return `/tasks${params.size ? `?${params}` : ""}`;
  };
  return Object.fromEntries([["all", href(undefined)], ...TASK_STATES.map((state) => [state, href(state)])]);
}

/** The monitor's links that keep the search: the pages either side, and the list the other way round. */
function pageLinks(filter: Record<string, string | undefined>, nextCursor: string | null, prevCursor: string | null) {
  const href = (changes: Record<string, string | undefined>) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...filter, cursor: undefined, before: undefined, ...changes }))
      if (value) params.set(name, value);
    return `/tasks?${params}`;
  };
  const oldestFirst = filter.order === "oldest" || filter.order === "asc";
  const sorted = filter.sort && filter.sort !== "created" ? filter.sort : "created";
  const byCreated = sorted === "created";
  // Each column's header link: the other way round if the list is sorted by it, else its natural first way.
  const sortBy = Object.fromEntries(
    Object.keys(TASK_SORTS).map((column) => {
      const current = column === sorted;
      const ascending = current ? !oldestFirst : column === "state" || column === "breed";
      const order = column === "created" ? (ascending ? "oldest" : undefined) : ascending ? "asc" : "desc";
      return [
        column,
        {
          href: href({ sort: column === "created" ? undefined : column, order }),
          current,
          next: ascending ? "ascending" : "descending",
        },
      ];
    }),
  );
  return {
    next: nextCursor
      ? {
          href: href({ cursor: nextCursor }),
          label: !byCreated ? "Next page →" : oldestFirst ? "Newer tasks →" : "Older tasks →",
        }
      : null,
    prev: prevCursor
      ? {
          href: href({ before: prevCursor }),
          label: !byCreated ? "← Previous page" : oldestFirst ? "← Older tasks" : "← Newer tasks",
        }
      : null,
    sortBy,
    sorted,
    oldestFirst,
  };
}

/** What became of a retry pressed on the task's page. */
function retryNotice(retry: unknown, task: TaskView): string | undefined {
  if (retry === "sent") return "Sent again with a new retry budget; its earlier attempts stay listed below.";
  if (retry === "too-late")
    return `Not retried: it is ${task.state} now, and only FAILURE or REVOKED tasks can be retried.`;
  return undefined;
}

/** What became of a stop pressed on the task's page. */
function stopNotice(stop: unknown, task: TaskView): string | undefined {
  if (stop === "stopped")
    return "Stopped: its worker was told to abandon the call to dog.ceo, and nothing it finds now is stored.";
  if (stop === "too-late")
    return `Not stopped: it is ${task.state} now${task.state === "STARTED" ? "" : ", no longer running"}. Nothing was changed.`;
  return undefined;
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
