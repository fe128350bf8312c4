// Tasks found by a search (lib/useCases/taskSearch.ts says what a search may ask): a page in
// the order (column, createdAt, id) from a place in it, the counts by state, and the ids a
// bulk action works through. The plain newest-first page is the store's prepared read.
import type { Prisma, Task } from "../../../generated/prisma/client.ts";
import { TaskState } from "../../../generated/prisma/enums.ts";
import { isOnPostgres, type Db } from "../db.ts";
import type { PageReads } from "../index.ts";

/** What a search matches, each field ANDed; absent fields match every task. */
export interface TaskMatch {
  ids?: string[];
  idPrefix?: string;
  state?: TaskState;
  breed?: string;
  subBreed?: string;
  /** Words in the task's error, matched with LIKE: the caller keeps out % and \. */
  errorContains?: string;
  /** One of these errors exactly. */
  errorIn?: string[];
  createdFrom?: Date;
  createdBefore?: Date;
}

/** The list's sortable columns, each a Task field. */
export type SortColumn = "createdAt" | "state" | "breed" | "limit" | "attemptCount" | "photoCount";
/** A task's place in a sorted list: its id, creation time and the sort column's value. */
export type Place = { id: string; createdAt: Date } & Partial<Record<SortColumn, unknown>>;
/** The order (column, createdAt, id) walked one way, from beyond `after` if given. */
export interface Walk {
  column: SortColumn;
  walk: "asc" | "desc";
  after?: Place;
}
export type StateCounts = Partial<Record<TaskState, number>>;
/** A task in a list, with how many of its photos the gallery still holds. */
export type ListedRow = Task & { photosInGallery: number };

export interface TaskSearchQueries {
  /** The task's place in a list sorted by `column`; undefined if there is no such task. */
  place(id: string, column: SortColumn): Promise<Place | undefined>;
  /** Up to `take` matching tasks in the walk's order. */
  find(match: TaskMatch, order: Walk, take: number): Promise<ListedRow[]>;
  /** How many match in each state (only those beyond the walk's place, if given). */
  countByState(match: TaskMatch, beyond?: Walk): Promise<StateCounts>;
  /** Ids of matching tasks (in one of `states`, if given) in id order, after the id `after`. */
  ids(match: TaskMatch, options: { states?: TaskState[]; after?: string; take: number }): Promise<string[]>;
}

export function taskSearchQueries(db: Db, reads: PageReads): TaskSearchQueries {
  const stateOrder = isOnPostgres(db) ? Object.values(TaskState) : Object.values(TaskState).sort();
  const walked = (match: TaskMatch, order?: Walk): Prisma.TaskWhereInput => {
    const where = whereOf(match);
    return order?.after
      ? { AND: [where, beyond(stateOrder, order.column, order.after, order.walk === "desc" ? "lt" : "gt")] }
      : where;
  };
  return {
    async place(id, column) {
      const select = { id: true, createdAt: true, ...(column === "createdAt" ? {} : { [column]: true }) };
      return (await db.task.findUnique({ where: { id }, select })) ?? undefined;
    },
    async find(match, order, take) {
      // The plain first page, which every home page, live stream and monitor view shows.
      if (isEmpty(match) && !order.after && order.walk === "desc" && order.column === "createdAt")
        return reads.newestTasks(take);
      const { column, walk } = order;
      const orderBy = [
        ...(column === "createdAt" ? [] : [{ [column]: walk }]),
        { createdAt: walk },
        { id: walk },
      ] as Prisma.TaskOrderByWithRelationInput[];
      const rows = await db.task.findMany({ where: walked(match, order), orderBy, take });
      // Counted for these tasks only, through the link table's index: Prisma's _count would
      // aggregate every link in the gallery for each list.
      const links = await db.taskPhoto.groupBy({
        by: ["taskId"],
        where: { taskId: { in: rows.map((t) => t.id) } },
        _count: { _all: true },
      });
      const shown = new Map(links.map((l) => [l.taskId, l._count._all]));
      return rows.map((task) => ({ ...task, photosInGallery: shown.get(task.id) ?? 0 }));
    },
    // Grouped by state even for a plain count: Prisma's count() wraps the search in a
    // subquery selecting the id, which no index covers, so it read every matching row.
    async countByState(match, order) {
      const groups = await db.task.groupBy({ by: ["state"], where: walked(match, order), _count: { _all: true } });
      return Object.fromEntries(groups.map((g) => [g.state, g._count._all])) as StateCounts;
    },
    async ids(match, { states, after, take }) {
      const rows = await db.task.findMany({
        where: {
          AND: [
            whereOf(match),
            ...(states ? [{ state: { in: states } }] : []),
            ...(after ? [{ id: { gt: after } }] : []),
          ],
        },
        select: { id: true },
        orderBy: { id: "asc" },
        take,
      });
      return rows.map((t) => t.id);
    },
  };
}

const isEmpty = (match: TaskMatch) => Object.values(match).every((value) => value === undefined);

function whereOf(match: TaskMatch): Prisma.TaskWhereInput {
  const { ids, idPrefix, errorContains, errorIn, createdFrom: from, createdBefore: to } = match;
  return {
    ...(match.state ? { state: match.state } : {}),
    ...(match.breed ? { breed: match.breed } : {}),
    ...(match.subBreed ? { subBreed: match.subBreed } : {}),
    ...(ids || idPrefix ? { id: { ...(ids ? { in: ids } : {}), ...(idPrefix ? { startsWith: idPrefix } : {}) } } : {}),
    // contains is LIKE underneath: a _ in the words also matches any one character.
    ...(errorContains || errorIn
      ? { error: { ...(errorIn ? { in: errorIn } : {}), ...(errorContains ? { contains: errorContains } : {}) } }
      : {}),
    ...(from || to ? { createdAt: { ...(from ? { gte: from } : {}), ...(to ? { lt: to } : {}) } } : {}),
  };
}

/**
 * The tasks after `place` in the order (column, createdAt, id), walking `way`. A state has
 * no "greater than" in Prisma: the states after it are listed, in the order the database
 * sorts them (PostgreSQL by the enum's declaration, SQLite by its text).
 */
function beyond(stateOrder: TaskState[], column: SortColumn, place: Place, way: "lt" | "gt"): Prisma.TaskWhereInput {
  const tail: Prisma.TaskWhereInput[] = [
    { createdAt: { [way]: place.createdAt } },
    { createdAt: place.createdAt, id: { [way]: place.id } },
  ];
  if (column === "createdAt") return { OR: tail };
  const value = place[column];
  const at = stateOrder.indexOf(value as TaskState);
  const ahead: Prisma.TaskWhereInput =
    column === "state"
      ? { state: { in: way === "gt" ? stateOrder.slice(at + 1) : stateOrder.slice(0, at) } }
      : { [column]: { [way]: value } };
  return { OR: [ahead, { [column]: value, OR: tail }] };
}
