// The PostgreSQL store's busy writes, each made for a group of calls (lib/store/postgres/batch.ts):
// accepts, claims, successes and confirms that arrive together go to the database as one
// statement or one short transaction, with the group's rows as a JSON parameter. The
// guards and their meaning are those of one call: a multi-row UPDATE checks each row's
// own condition, and a call whose row fails it is told so alone.
import type { Task } from "../../../generated/prisma/client.ts";
import { TaskState } from "../../../generated/prisma/enums.ts";
import { toPhotoView, type PhotoView } from "../../lifecycle/shapes.ts";
import type { Claim, NewTask, OpenRun, OutboxJob } from "../index.ts";
import { batched } from "./batch.ts";
import { guard, NOW, type Query, type Statement } from "./query.ts";

const { PENDING, RETRY, STARTED, SUCCESS, REVOKED } = TaskState;
const named = (name: string, text: string): Statement => ({ name: `gendog_${name}`, text });
const json = (rows: unknown[]) => JSON.stringify(rows);

// The task and its job, both or neither: one statement is one transaction.
const ACCEPT = named(
  "accept",
  `WITH j AS (SELECT * FROM json_to_recordset($1::json) AS j(id text, breed text, "subBreed" text, "limit" int, body text, "leaseMs" float8, ord int)),
   t AS (INSERT INTO "Task" (id, breed, "subBreed", "limit", state, "photoCount", "attemptCount", "createdAt", "updatedAt")
         SELECT id, breed, "subBreed", "limit", '${PENDING}', 0, 0, ${NOW}, ${NOW} FROM j ORDER BY ord RETURNING *),
   o AS (INSERT INTO "OutboxMessage" ("taskId", body, "createdAt", tries, "leaseUntil")
         SELECT id, body, ${NOW}, 0, ${NOW} + "leaseMs" * interval '1 millisecond' FROM j ORDER BY ord
         RETURNING id AS "jobId", "taskId" AS "jobTaskId", body AS "jobBody", attempt AS "jobAttempt")
   SELECT t.*, o.* FROM t JOIN o ON o."jobTaskId" = t.id`,
);

// The row decides, not the message: see ../sqlite/statements.ts. LEAST skips a NULL: a task whose
// confirm is not written yet is stamped queued now (see mark-sent below).
const CLAIM = named(
  "claim",
  `UPDATE "Task" t SET state = '${STARTED}', "attemptCount" = t."attemptCount" + 1, "retryAt" = NULL, "startedAt" = COALESCE(t."startedAt", ${NOW}), "updatedAt" = ${NOW},
     "queuedAt" = LEAST(t."queuedAt", ${NOW})
   FROM json_to_recordset($1::json) AS j("taskId" text, attempt int, redelivered boolean)
   WHERE t.id = j."taskId" AND ${guard("claim")} AND CASE t.state
     WHEN '${PENDING}' THEN t."attemptCount" < j.attempt
     WHEN '${RETRY}' THEN t."attemptCount" < j.attempt AND (t."retryAt" IS NULL OR t."retryAt" <= ${NOW})
     ELSE (j.redelivered AND t."attemptCount" <= j.attempt) OR (t."attemptCount" < j.attempt AND EXISTS (
       SELECT 1 FROM "Attempt" a WHERE a."taskId" = t.id AND a.number = t."attemptCount" AND a.outcome = 'LOST'))
   END
   RETURNING t.*`,
);
const STATES = named("states", `SELECT id, state FROM "Task" WHERE id = ANY($1::text[])`);
// A run still open here belonged to a worker that died mid-job. The new runs are not seen by
// the UPDATE (one statement sees the rows as they were when it began).
const OPEN_RUNS = named(
  "open_runs",
  `WITH j AS (SELECT * FROM json_to_recordset($1::json) AS j("taskId" text, number int, "workerId" text, ord int)),
   lost AS (UPDATE "Attempt" a SET outcome = 'LOST', "finishedAt" = ${NOW}, error = 'the worker stopped before finishing; the job was delivered again'
            FROM j WHERE a."taskId" = j."taskId" AND a.outcome IS NULL)
   INSERT INTO "Attempt" ("taskId", number, "workerId", "startedAt") SELECT "taskId", number, "workerId", ${NOW} FROM j ORDER BY ord RETURNING id, "taskId"`,
);

// SUCCESS for the runs that are still their task's latest, their old links gone, every
// run's attempt closed (SKIPPED if a later run took over), the new photos stored. Photos
// are inserted in url order, so two groups storing the same ones take their locks alike.
const SUCCEED = named(
  "succeed",
  `WITH j AS (SELECT * FROM json_to_recordset($1::json) AS j("taskId" text, number int, "attemptId" int, breed text, "subBreed" text, urls text[])),
   won AS (UPDATE "Task" t SET state = '${SUCCESS}', "photoCount" = cardinality(j.urls), "finishedAt" = ${NOW}, error = NULL, "updatedAt" = ${NOW}
           FROM j WHERE t.id = j."taskId" AND ${guard("succeed")} AND t."attemptCount" = j.number RETURNING t.*),
   unlinked AS (DELETE FROM "TaskPhoto" tp USING won WHERE tp."taskId" = won.id),
   closed AS (UPDATE "Attempt" a SET outcome = CASE WHEN won.id IS NULL THEN 'SKIPPED' ELSE 'SUCCESS' END, "finishedAt" = ${NOW},
                error = CASE WHEN won.id IS NULL THEN 'a later run of this task took over' END, "retryDelayMs" = NULL
              -- a run whose task was stopped meanwhile stays REVOKED, saying who stopped it
              FROM j LEFT JOIN won ON won.id = j."taskId" WHERE a.id = j."attemptId" AND (won.id IS NOT NULL OR a.outcome IS DISTINCT FROM '${REVOKED}')),
   stored AS (INSERT INTO "Photo" (url, breed, "subBreed", "createdAt")
              SELECT DISTINCT ON (u) u, j.breed, j."subBreed", ${NOW} FROM j JOIN won ON won.id = j."taskId" CROSS JOIN LATERAL unnest(j.urls) AS u
              ORDER BY u ON CONFLICT (url) DO NOTHING)
   SELECT * FROM won`,
);
// A statement of its own: it must see the photos just stored, and those another transaction stored meanwhile.
const LINK = named(
  "link",
  `INSERT INTO "TaskPhoto" ("taskId", "photoId", position)
   SELECT j."taskId", p.id, u.ord - 1 FROM json_to_recordset($1::json) AS j("taskId" text, urls text[])
   CROSS JOIN LATERAL unnest(j.urls) WITH ORDINALITY AS u(url, ord) JOIN "Photo" p ON p.url = u.url ON CONFLICT DO NOTHING`,
);
const PHOTOS_OF = named(
  "photos_of",
  `SELECT tp."taskId", p.id, p.url, p.breed, p."subBreed", p."createdAt" FROM "TaskPhoto" tp JOIN "Photo" p ON p.id = tp."photoId"
   WHERE tp."taskId" = ANY($1::text[]) ORDER BY tp."taskId", tp.position`,
);

// The broker confirmed these jobs: sent, and their tasks queued. It may deliver a job
// before its confirm is back: queued is never after started. A task whose row a claim holds
// is skipped, not waited for: the claim stamps queuedAt itself (waiting here queued the web's
// confirms behind the worker's commits, and the relay's next publishes behind them).
const sent = `WITH sent AS (UPDATE "OutboxMessage" SET "sentAt" = ${NOW}, tries = tries + 1, "leaseUntil" = NULL WHERE id = ANY($1::int[]))
   UPDATE "Task" SET "queuedAt" = LEAST(${NOW}, COALESCE("startedAt", ${NOW})), "updatedAt" = ${NOW} WHERE id IN (
     SELECT id FROM "Task" WHERE id = ANY($2::text[]) AND "queuedAt" IS NULL FOR UPDATE SKIP LOCKED)`;
const MARK_SENT = named("mark_sent", sent);
const MARK_SENT_READ = named("mark_sent_read", `${sent} RETURNING *`);

type Transaction = <T>(fn: (q: Query) => Promise<T>) => Promise<T>;
type ClaimCall = { taskId: string; attempt: number; redelivered: boolean; workerId: string };
type SucceedCall = { run: OpenRun; breed: string; subBreed: string | null; urls: string[]; withPhotos: boolean };
type Succeeded = { task: Task; photos?: PhotoView[] } | undefined;

export function groupedWrites(query: Query, transaction: Transaction) {
  const accept = batched(async (calls: { input: NewTask; body: string; leaseMs: number }[]) => {
    const rows = await query(ACCEPT, [
      json(calls.map(({ input, body, leaseMs }, ord) => ({ ...input, body, leaseMs, ord }))),
    ]);
    const byTask = new Map(rows.map((row) => [row.id as string, row]));
    return calls.map(({ input }) => {
      const { jobId, jobTaskId, jobBody, jobAttempt, ...task } = byTask.get(input.id)!;
      return {
        task: task as unknown as Task,
        job: { id: jobId, taskId: jobTaskId, body: jobBody, attempt: jobAttempt } as OutboxJob,
      };
    });
  });

  const claim = batched(
    (calls: ClaimCall[]) =>
      transaction(async (q): Promise<Claim[]> => {
        const claimed = new Map(
          (await q(CLAIM, [json(calls)])).map((row) => [row.id as string, row as unknown as Task]),
        );
        const missed = calls.filter((c) => !claimed.has(c.taskId)).map((c) => c.taskId);
        const states = new Map(
          missed.length === 0
            ? []
            : (await q(STATES, [missed])).map((row) => [row.id as string, row.state as TaskState]),
        );
        const runs = calls
          .filter((c) => claimed.has(c.taskId))
          .map((c, ord) => ({
            taskId: c.taskId,
            number: claimed.get(c.taskId)!.attemptCount,
            workerId: c.workerId,
            ord,
          }));
        const attempts = new Map(
          runs.length === 0
            ? []
            : (await q(OPEN_RUNS, [json(runs)])).map((row) => [row.taskId as string, row.id as number]),
        );
        return calls.map(({ taskId }): Claim => {
          const task = claimed.get(taskId);
          if (task) return { kind: "run", task, taskId, attemptId: attempts.get(taskId)!, number: task.attemptCount };
          const state = states.get(taskId);
          return state ? { kind: "skip", state } : { kind: "missing" };
        });
      }),
    { key: (call) => call.taskId },
  );

  const succeed = batched(
    (calls: SucceedCall[]) =>
      transaction(async (q): Promise<Succeeded[]> => {
        const rows = calls.map(({ run, breed, subBreed, urls }) => ({
          taskId: run.taskId,
          number: run.number,
          attemptId: run.attemptId,
          breed,
          subBreed,
          urls,
        }));
        const won = new Map((await q(SUCCEED, [json(rows)])).map((row) => [row.id as string, row as unknown as Task]));
        const linked = rows.filter((row) => won.has(row.taskId));
        if (linked.length > 0) await q(LINK, [json(linked.map(({ taskId, urls }) => ({ taskId, urls })))]);
        const heard = calls.filter((c) => c.withPhotos && won.has(c.run.taskId)).map((c) => c.run.taskId);
        const photos = new Map<string, PhotoView[]>(heard.map((id) => [id, []]));
        if (heard.length > 0)
          for (const p of await q(PHOTOS_OF, [heard]))
            photos.get(p.taskId as string)!.push(toPhotoView(p as unknown as Parameters<typeof toPhotoView>[0]));
        return calls.map(({ run, withPhotos }) => {
          const task = won.get(run.taskId);
          if (!task) return undefined;
          return withPhotos ? { task, photos: photos.get(run.taskId)! } : { task };
        });
      }),
    { key: (call) => call.run.taskId },
  );

  const markSent = batched(async (calls: { jobs: { id: number; taskId: string }[]; withTasks: boolean }[]) => {
    const jobs = calls.flatMap((c) => c.jobs);
    const read = calls.some((c) => c.withTasks);
    const rows = (await query(read ? MARK_SENT_READ : MARK_SENT, [
      jobs.map((j) => j.id),
      jobs.map((j) => j.taskId),
    ])) as unknown as Task[];
    const byTask = new Map(rows.map((row) => [row.id, row]));
    return calls.map(({ jobs, withTasks }) => (withTasks ? jobs.flatMap((j) => byTask.get(j.taskId) ?? []) : []));
  });

  return { accept, claim, succeed, markSent };
}
