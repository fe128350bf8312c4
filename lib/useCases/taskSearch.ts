// Finding tasks across all of history, for the monitor and GET /api/tasks: by state, breed,
// id prefix, error text and creation time, newest or oldest first, a page at a time in
// either direction (keyset paging), with how many match in all.
import { cachedFor } from "../platform/cachedFor.ts";
import type {
  ListedRow,
  Place,
  SortColumn,
  StateCounts,
  TaskMatch,
  TaskSearchQueries,
} from "../store/queries/index.ts";
import { ValidationError } from "../platform/errors.ts";
import { isUuid } from "../lifecycle/validation.ts";
import { TASK_STATES, toTaskView, type TaskState, type TaskView } from "../lifecycle/shapes.ts";

export interface TaskFilter {
  state?: string;
  breed?: string;
  id?: string;
  /** Words in the task's error ("500", "timeout"). */
  error?: string;
  /** Created at or after / before these times (ISO 8601, or a date: "2026-11-28"). */
  from?: string;
  to?: string;
  /** The page after this task (in the list's order)... */
  cursor?: string;
  /** ...or the page before it. */
  before?: string;
  /** newest first (the default) or oldest first, by creation time; with `sort`, "asc" or "desc". */
  order?: string;
  /** The column the list is sorted by (created when absent), then by creation time and id. */
  sort?: string;
  limit?: number;
}

/** newest and oldest order by creation time; asc and desc go with a `sort`. */
export const TASK_ORDERS = ["newest", "oldest", "asc", "desc"] as const;
/** The list's sortable columns, each a Task field: runtime is not stored, so it is not one. */
export const TASK_SORTS = {
  created: "createdAt",
  state: "state",
  breed: "breed",
  limit: "limit",
  attempts: "attemptCount",
  photos: "photoCount",
} as const satisfies Record<string, SortColumn>;

/**
 * A task in a list, with how many of its photos the gallery still holds ("Clear photos" empties it; the task keeps its
 * count).
 */
export type ListedTask = TaskView & { photosInGallery: number };

/**
 * total: "none" for a list that shows no total (the home page's recent tasks, the live
 * snapshot); otherwise a search counts its matches, and the unfiltered total comes from the
 * counts by state, at most 5 s old, so a busy monitor does not count every row per view.
 */
export async function listTasks(
  search: TaskSearchQueries,
  filter: TaskFilter = {},
  total: "count" | "none" = "count",
): Promise<{
  tasks: ListedTask[];
  nextCursor: string | null;
  prevCursor: string | null;
  total?: number;
  offset?: number;
}> {
  const take = filter.limit ?? 20;
  if (!Number.isInteger(take) || take < 1 || take > 100)
    throw new ValidationError({ limit: "The page size must be a whole number from 1 to 100." });
  const { column, order } = sortOf(filter);
  const anchorId = filter.cursor ?? filter.before;
  if (anchorId !== undefined && !isUuid(anchorId))
    throw new ValidationError({ cursor: "The cursor is not one this API gave out." });
  const match = matchOf(filter);
  // Keyset paging from the anchor task's place in the order, wherever that task is now:
  // a task that changed state since the last page cannot make the next one skip a row.
  const anchor: Place | undefined = anchorId ? await search.place(anchorId, column) : undefined;
  if (anchorId && !anchor) throw new ValidationError({ cursor: "The cursor is not one this API gave out." });
  // A page before the anchor is read walking the other way, then turned round.
  const backwards = filter.cursor === undefined && filter.before !== undefined;
  const walk = backwards === (order === "desc") ? "asc" : "desc";
  const filtered = Object.keys(match).length > 0;
  const counting =
    total === "none"
      ? undefined
      : filtered
        ? search.countByState(match).then(totalOf)
        : countTasksByState(search).then(totalOf);
  const [rows, matches] = await Promise.all([search.find(match, { column, walk, after: anchor }, take + 1), counting]);
  const more = rows.length > take;
  const page: ListedRow[] = rows.slice(0, take);
  if (backwards) page.reverse();
  const tasks = page.map((task) => ({ ...toTaskView(task), photosInGallery: task.photosInGallery }));
  // Going back, the page we came from is always next; going on, the anchor's page is always before.
  const nextCursor = (backwards || more) && page.length > 0 ? page[page.length - 1]!.id : null;
  const prevCursor = (backwards ? more : anchor !== undefined) && page.length > 0 ? page[0]!.id : null;
  if (matches === undefined) return { tasks, nextCursor, prevCursor };
  // Where this page starts among the matches ("26–50 of 93"): the first page starts at 0;
  // a later one counts the matches ahead of its first task, over the same index as the page.
  const first = page[0];
  const offset =
    anchor && first
      ? totalOf(await search.countByState(match, { column, walk: order === "desc" ? "asc" : "desc", after: first }))
      : 0;
  return { tasks, nextCursor, prevCursor, total: matches, offset };
}

/**
 * How many tasks of a search are in each state, the search's own state left out: the
 * monitor's totals by state then say what each state tag would find. Without a search,
 * the cached counts over every task.
 */
export async function countSearchByState(search: TaskSearchQueries, filter: TaskFilter): Promise<StateCounts> {
  const match = matchOf({ ...filter, state: undefined });
  if (Object.keys(match).length === 0) return countTasksByState(search);
  return search.countByState(match);
}

/**
 * How many tasks are in each state, for the monitor's totals and the metrics: counted at most once every 5 s per
 * database (a GROUP BY over every task blocks the event loop for milliseconds on SQLite).
 */
export const countTasksByState = cachedFor(5000, (search: TaskSearchQueries) => search.countByState({}));

/** The column and direction asked: `order` is newest/oldest by creation time, or asc/desc with a `sort`. */
export function sortOf(filter: Pick<TaskFilter, "sort" | "order">): { column: SortColumn; order: "asc" | "desc" } {
  const sort = filter.sort ?? "created";
  if (!Object.hasOwn(TASK_SORTS, sort))
    throw new ValidationError({ sort: `The sort must be one of ${Object.keys(TASK_SORTS).join(", ")}.` });
  if (filter.order !== undefined && !TASK_ORDERS.includes(filter.order as (typeof TASK_ORDERS)[number]))
    throw new ValidationError({ order: `The order must be one of ${TASK_ORDERS.join(", ")}.` });
  const order = filter.order === "oldest" || filter.order === "asc" ? "asc" : "desc";
  return { column: TASK_SORTS[sort as keyof typeof TASK_SORTS], order };
}

/** Every task, from the counts by state. */
export const totalOf = (counts: StateCounts) => Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);

/** What a search asks the database for, checked: a ValidationError says what is wrong with it. */
export function matchOf(filter: TaskFilter): TaskMatch {
  if (filter.state && !TASK_STATES.includes(filter.state as TaskState)) {
    throw new ValidationError({ state: `The state must be one of ${TASK_STATES.join(", ")}.` });
  }
  const idPrefix = filter.id?.trim().toLowerCase();
  // Only what an id can hold: LIKE would read % and _ as wildcards and match every task.
  if (idPrefix && !/^[0-9a-f-]{1,36}$/.test(idPrefix))
    throw new ValidationError({ id: "An id prefix holds only hex digits and dashes, like 3f2a or 3f2a9c1e-." });
  const error = filter.error?.trim();
  if (error && error.length > 100) throw new ValidationError({ error: "Search errors for at most 100 characters." });
  // The database reads % as "anything" (the store passes it on): it would match every task.
  if (error && /[%\\]/.test(error))
    throw new ValidationError({ error: "Search errors for words: % and \\ are not allowed." });
  const from = time(filter.from, "from");
  const to = time(filter.to, "to", { wholeDay: true });
  if (from && to && to <= from)
    throw new ValidationError({
      to: "“Until” comes before “from”: no task can match. Swap the dates, or leave one empty.",
    });
  const [main, sub] = breedOf(filter.breed);
  return {
    ...(filter.state ? { state: filter.state as TaskState } : {}),
    ...(main ? { breed: main } : {}),
    ...(sub ? { subBreed: sub } : {}),
    ...(idPrefix ? { idPrefix } : {}),
    ...(error ? { errorContains: error } : {}),
    ...(from ? { createdFrom: from } : {}),
    ...(to ? { createdBefore: to } : {}),
  };
}

/** A breed as the form takes it ("hound/afghan") or as every page shows it ("hound (afghan)"). */
function breedOf(text: string | undefined): [string?, string?] {
  const breed = text?.trim().toLowerCase();
  if (!breed) return [];
  const label = /^([^()/]+?)\s*\(\s*([^()/]+?)\s*\)$/.exec(breed);
  return label ? [label[1], label[2]] : (breed.split("/") as [string, string?]);
}

/**
 * A bound of the time range. A date alone means that whole day in UTC: "until 2026-11-28"
 * takes in tasks created that day (the end is exclusive, so it ends at the next midnight).
 */
function time(value: string | undefined, field: "from" | "to", { wholeDay = false } = {}): Date | undefined {
  if (!value?.trim()) return undefined;
  const text = value.trim();
  const at = /^\d{4}-\d\d-\d\d$/.test(text)
    ? new Date(Date.parse(`${text}T00:00:00Z`) + (wholeDay ? 86_400_000 : 0))
    : /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?$/.test(text)
      ? new Date(text)
      : undefined;
  if (!at || Number.isNaN(at.getTime()))
    throw new ValidationError({ [field]: `"${field}" is a date or time like 2026-11-28 or 2026-11-28T14:30Z.` });
  return at;
}
