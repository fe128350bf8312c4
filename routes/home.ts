// The home page's context: the form (refilled after a refusal, with what is wrong), the
// gallery, the recent tasks, and the banner after a submit or a clear.
import type { Request } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import type { BreedCatalog } from "../lib/dogs/breeds.ts";
import { ValidationError } from "../lib/platform/errors.ts";
import { galleryPage } from "../lib/useCases/gallery.ts";
import { toTaskView, type TaskView } from "../lib/lifecycle/shapes.ts";
import { listTasks } from "../lib/useCases/taskSearch.ts";
import { isUuid, parseTaskInput } from "../lib/lifecycle/validation.ts";
import { workerAvailability, type WorkerAvailability } from "../lib/monitor/workerAvailability.ts";
import { queryText } from "./query.ts";

/**
 * What the person typed, to show it again (cut short: it travels in a URL). The form's list
 * names a sub-breed as "breed/sub"; one sent apart (a link, a script) is shown the same way.
 */
export function formOf(fields: Record<string, unknown> | undefined) {
  const breed = String(fields?.breed ?? "");
  const subBreed =
    typeof fields?.subBreed === "string" && fields.subBreed !== "" && !breed.includes("/") ? `/${fields.subBreed}` : "";
  return { breed: `${breed}${subBreed}`.slice(0, 100), limit: String(fields?.limit ?? "").slice(0, 20) };
}

/**
 * The fields of a refused form as they came (a repeated field stays repeated, so it is refused again for the same
 * reason), each cut short.
 */
export function draftParams(body: Record<string, unknown> | undefined): URLSearchParams {
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

export async function homeContext(deps: AppDeps, req: Request) {
  const page = Math.max(1, Math.min(10_000, Number.parseInt(queryText(req.query.page) ?? "1", 10) || 1));
  const workers = workerAvailability(deps.workers.list());
  const [catalog, gallery, recent, flash] = await Promise.all([
    deps.breeds.get(),
    galleryPage(deps.data.photos, page),
    listTasks(deps.data.search, { limit: 10 }, "none"),
    flashMessage(deps, req, workers),
  ]);
  // After a submit, keep the person's choice in the form for the next one.
  const last = flash?.task;
  const draft = draftOf(req, catalog);
  return {
    title: "GenDog",
    breedOptions: catalog.options,
    form:
      draft?.form ??
      (last
        ? { breed: last.subBreed ? `${last.breed}/${last.subBreed}` : last.breed, limit: String(last.limit) }
        : { breed: "", limit: "5" }),
    errors: draft?.errors ?? {},
    flash,
    workers,
    // The banner of a waiting task says it already.
    flashSaysIdle: Boolean(flash?.task && waitsForWorker(flash.task, workers)),
    gallery,
    recentTasks: recent.tasks,
  };
}

interface Flash {
  kind: "success" | "warning" | "info" | "danger";
  text: string;
  taskId?: string;
  task?: TaskView;
  /** Seconds until the person may submit again (static/app.js counts them down). */
  waitSeconds?: number;
}

/**
 * The banner after a submit follows its task (static/app.js refreshes it), so it never says "queued" of a finished one.
 */
function submittedNews(task: TaskView, workers: WorkerAvailability): Pick<Flash, "kind" | "text"> {
  const what = `${task.limit} × ${task.label} (task ${task.id.slice(0, 8)})`;
  if (task.waitingForQueue)
    return {
      kind: "warning",
      text: `Saved ${what}, waiting for the job queue: it runs as soon as RabbitMQ is reachable.`,
    };
  const idle = waitsForWorker(task, workers);
  if (idle) return { kind: "warning", text: `Saved ${what}. ${idle}` };
  switch (task.state) {
    case "SUCCESS":
      return {
        kind: "success",
        text: `Done: ${task.photoCount} photo${task.photoCount === 1 ? "" : "s"} of ${task.label} fetched (task ${task.id.slice(0, 8)}).`,
      };
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

/** Why a task that waits for a worker is not moving, when no worker takes jobs. */
export function waitsForWorker(task: TaskView, workers: WorkerAvailability): string | undefined {
  if (task.waitingForQueue || (task.state !== "PENDING" && task.state !== "RETRY")) return undefined;
  if (workers === "none")
    return "No worker is running: your task waits in the queue, and starts as soon as a worker does.";
  if (workers === "paused") return "Every worker is paused: your task waits in the queue until one is resumed.";
  return undefined;
}

async function flashMessage(deps: AppDeps, req: Request, workers: WorkerAvailability): Promise<Flash | null> {
  const submitted = queryText(req.query.submitted);
  if (submitted && isUuid(submitted)) {
    const row = await deps.data.tasks.task(submitted);
    if (!row) return null;
    const task = toTaskView(row);
    return { taskId: task.id, task, ...submittedNews(task, workers) };
  }
  // Sent back over the submit limit: the time left now, so a reload never shows an old count.
  const limited = queryText(req.query.limited);
  const waitSeconds = limited && /^\d{1,15}$/.test(limited) ? Math.ceil((Number(limited) - Date.now()) / 1000) : 0;
  if (waitSeconds > 0 && waitSeconds <= 3600) {
    const perMinute = deps.config.rateLimitPerMinute;
    return {
      kind: "warning",
      text: `Too many new tasks from you: at most ${perMinute} a minute. Your choice is kept below.`,
      waitSeconds,
    };
  }
  const cleared = queryText(req.query.cleared);
  if (cleared && /^\d+$/.test(cleared))
    return { kind: "info", text: `Cleared ${cleared} photo${cleared === "1" ? "" : "s"} from the gallery.` };
  return null;
}
