// Tasks read one at a time or by id: a task's page, the banner after a submit, the dead
// letters' tasks, and the failures grouped by their error.
import type { Attempt, OutboxMessage, Photo, Task } from "../../../generated/prisma/client.ts";
import { TaskState } from "../../../generated/prisma/enums.ts";
import type { Db } from "../db.ts";

/** A task with its attempts (in order), its photos (in the order fetched) and the job it was last published with. */
export type TaskWithHistory = Task & { attempts: Attempt[]; photos: Photo[]; lastJob: OutboxMessage | undefined };

export interface TaskQueries {
  task(id: string): Promise<Task | undefined>;
  withHistory(id: string): Promise<TaskWithHistory | undefined>;
  /** The tasks of these ids that exist, in no order. */
  byIds(ids: string[]): Promise<Task[]>;
  /** The errors of these runs (the tasks' attempts numbered one of `numbers`) that have one. */
  attemptErrors(taskIds: string[], numbers: number[]): Promise<{ taskId: string; number: number; error: string }[]>;
  /** The `limit` most frequent errors of FAILURE tasks, with how many tasks have each; the most frequent first. */
  failureErrors(limit: number): Promise<{ error: string | null; count: number }[]>;
}

export function taskQueries(db: Db): TaskQueries {
  return {
    task: async (id) => (await db.task.findUnique({ where: { id } })) ?? undefined,
    async withHistory(id) {
      const task = await db.task.findUnique({
        where: { id },
        include: {
          attempts: { orderBy: { id: "asc" } },
          photos: { orderBy: { position: "asc" }, include: { photo: true } },
          outbox: { orderBy: { id: "desc" }, take: 1 },
        },
      });
      if (!task) return undefined;
      const { outbox, photos, ...rest } = task;
      return { ...rest, photos: photos.map((link) => link.photo), lastJob: outbox[0] };
    },
    byIds: (ids) => db.task.findMany({ where: { id: { in: ids } } }),
    async attemptErrors(taskIds, numbers) {
      const rows = await db.attempt.findMany({
        where: { taskId: { in: taskIds }, number: { in: numbers }, error: { not: null } },
        select: { taskId: true, number: true, error: true },
      });
      return rows.map((a) => ({ taskId: a.taskId, number: a.number, error: a.error! }));
    },
    async failureErrors(limit) {
      // One GROUP BY over the (state, error) index.
      const rows = await db.task.groupBy({
        by: ["error"],
        where: { state: TaskState.FAILURE },
        _count: { _all: true },
        orderBy: { _count: { error: "desc" } },
        take: limit,
      });
      return rows.map((row) => ({ error: row.error, count: row._count._all }));
    },
  };
}
