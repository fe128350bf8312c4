// Dead letters you can see, and the work queue's purge. Dead letters are the jobs RabbitMQ
// gave up on (poison, all attempts used, a quorum queue's delivery limit); they are read
// from Q.dead without losing any (tasks/broker/inspection.ts), each linked to its task. Requeue
// sends the task again through the rerun transition, as a new job through the outbox, and
// removes the dead message; discard removes it. Actions on all of them act only for the
// count a person saw, and purging the work queue cancels the tasks whose jobs it removes
// (else the recovery sweep would send them again).
//
// A letter whose task was sent again since (a retry by hand or of its failure group) or has
// finished well says nothing any more: it is "settled", and goes when its task is retried
// (discardSettledLetters, called after each retry), when all are requeued, or in one step
// from the page. Its "why" is the error of the run it died after, not RabbitMQ's "rejected".
import { recordAction } from "./audit.ts";
import type { Queries } from "../store/queries/index.ts";
import type { Task } from "../../generated/prisma/client.ts";
import { ConflictError, CountChangedError, NotFoundError, ValidationError } from "../platform/errors.ts";
import { toTaskView, type TaskView } from "../lifecycle/shapes.ts";
import type { TaskDeps } from "./tasks.ts";
import type { Decide, QueuedMessage } from "../../tasks/broker/inspection.ts";

/** Reads the dead-letter ("dead") or work ("work") queue; only the queue layer touches the broker. */
export interface MessageReader {
  readMessages(
    which: "dead" | "work",
    limit: number,
    decide?: Decide,
  ): Promise<{ total: number; messages: QueuedMessage[]; removed: number }>;
}

export type DeadLetterDeps = TaskDeps & { queue: MessageReader };

/** The most one action reads or removes: larger queues are handled in steps. */
export const MAX_AT_ONCE = 10_000;
const BATCH = 200;

export interface DeadLetterView extends QueuedMessage {
  task: Pick<TaskView, "id" | "state" | "label" | "retriable"> | null;
  /** The error of the run it died after (that attempt's, else its task's last), when the database has it. */
  error: string | null;
  /** Its task was sent again or finished well since: the letter is out of date. */
  settled: boolean;
}

/** The tasks the letters name, and the errors of the attempts they died after. */
async function lookUp(data: Pick<Queries, "tasks">, messages: QueuedMessage[]) {
  const ids = [...new Set(messages.flatMap((m) => (m.taskId ? [m.taskId] : [])))];
  const tasks = new Map<string, Task>();
  const errors = new Map<string, string>();
  for (let i = 0; i < ids.length; i += BATCH) {
    const batch = ids.slice(i, i + BATCH);
    for (const t of await data.tasks.byIds(batch)) tasks.set(t.id, t);
    const numbers = [...new Set(messages.filter((m) => m.taskId && batch.includes(m.taskId)).map((m) => m.attempt))];
    for (const a of await data.tasks.attemptErrors(batch, numbers)) errors.set(`${a.taskId}:${a.number}`, a.error);
  }
  return { tasks, errors };
}

/**
 * Settled: the task was sent again after this letter's run (it waits, runs or succeeded, or
 * failed again with a letter of its own), so requeueing the letter would only repeat that.
 */
export function isSettled(
  letter: Pick<QueuedMessage, "attempt">,
  task: Pick<Task, "state" | "attemptBase"> | undefined,
): boolean {
  if (!task) return false; // gone, or names no task: a person decides
  if (task.state !== "FAILURE" && task.state !== "REVOKED") return true;
  return letter.attempt <= task.attemptBase;
}

/** The first `limit` dead letters and how many there are, each with its task (if it still exists). */
export async function listDeadLetters(
  deps: { data: Queries; queue: MessageReader },
  limit = 50,
): Promise<{ total: number; settled: number; letters: DeadLetterView[] }> {
  const { total, messages } = await deps.queue.readMessages("dead", Math.min(limit, MAX_AT_ONCE));
  const { tasks, errors } = await lookUp(deps.data, messages);
  const letters = messages.map((m) => {
    const row = m.taskId ? tasks.get(m.taskId) : undefined;
    const task = row ? toTaskView(row) : undefined;
    return {
      ...m,
      task: task ? { id: task.id, state: task.state, label: task.label, retriable: task.retriable } : null,
      error: (m.taskId && errors.get(`${m.taskId}:${m.attempt}`)) || row?.error || null,
      settled: isSettled(m, row),
    };
  });
  return { total, settled: letters.filter((l) => l.settled).length, letters };
}

/**
 * Removes the settled letters (up to MAX_AT_ONCE from the head): called after a retry sends tasks again, or by a person
 * (`by`, recorded).
 */
export async function discardSettledLetters(
  deps: { data: Queries; queue: MessageReader },
  by?: string,
): Promise<{ removed: number }> {
  const { removed } = await deps.queue.readMessages("dead", MAX_AT_ONCE, async (messages) => {
    const { tasks } = await lookUp(deps.data, messages);
    return new Set(
      messages.filter((m) => isSettled(m, m.taskId ? tasks.get(m.taskId) : undefined)).map((m) => m.position),
    );
  });
  if (by !== undefined)
    await recordAction(deps.data.audit, { by, action: "discard-settled", target: "dead letters", count: removed });
  return { removed };
}

/** Sends the task of the dead letter `key` again and removes the letter (and its copies). */
export async function requeueDeadLetter(
  deps: DeadLetterDeps,
  key: string,
  by: string,
): Promise<{ task: TaskView; removed: number }> {
  let refusal: Error | undefined;
  let sent: TaskView | undefined;
  const { removed } = await deps.queue.readMessages("dead", MAX_AT_ONCE, async (messages) => {
    const matches = messages.filter((m) => m.key === key);
    const taskId = matches[0]?.taskId;
    if (!taskId) {
      refusal =
        matches.length === 0
          ? gone()
          : new ConflictError("This message names no task, so there is nothing to send again: discard it.");
      return new Set();
    }
    const [rerun] = await deps.lifecycle.rerun([taskId], by);
    if (!rerun) {
      refusal = await whyNotRerun(deps.data, taskId);
      return new Set();
    }
    void deps.dispatcher.dispatch(rerun.job, 0);
    sent = toTaskView(rerun.task);
    return new Set(matches.map((m) => m.position));
  });
  if (refusal) throw refusal;
  await recordAction(deps.data.audit, {
    by,
    action: "requeue",
    target: key,
    count: removed,
    detail: `task ${sent!.id} sent again`,
  });
  return { task: sent!, removed };
}

/** Removes the dead letter `key` (and its copies). */
export async function discardDeadLetter(
  deps: { queue: MessageReader; data: Queries },
  key: string,
  by: string,
): Promise<{ removed: number }> {
  const { removed } = await deps.queue.readMessages(
    "dead",
    MAX_AT_ONCE,
    async (messages) => new Set(messages.filter((m) => m.key === key).map((m) => m.position)),
  );
  if (removed === 0) throw gone();
  await recordAction(deps.data.audit, { by, action: "discard", target: key, count: removed });
  return { removed };
}

/**
 * Every dead letter, if `expected` is still their count: their tasks are sent again (a
 * batch per transaction) and the letters removed, and so are settled ones (their task was
 * sent again already, or finished); letters whose task is gone or that name none stay.
 */
export async function requeueAllDeadLetters(
  deps: DeadLetterDeps,
  expected: number,
  by: string,
): Promise<{ requeued: number; settled: number; kept: number }> {
  let settled = 0;
  const { removed, messages } = await readAll(deps.queue, "dead", expected, async (read) => {
    // Settled is judged before the reruns, which make every task they send PENDING.
    const { tasks } = await lookUp(deps.data, read);
    const stale = new Set(
      read.filter((m) => isSettled(m, m.taskId ? tasks.get(m.taskId) : undefined)).map((m) => m.position),
    );
    settled = stale.size;
    const ids = [...new Set(read.flatMap((m) => (m.taskId && !stale.has(m.position) ? [m.taskId] : [])))];
    const rerunIds = new Set<string>();
    for (let i = 0; i < ids.length; i += BATCH) {
      for (const { task, job } of await deps.lifecycle.rerun(ids.slice(i, i + BATCH), by)) {
        rerunIds.add(task.id);
        void deps.dispatcher.dispatch(job, 0);
      }
    }
    return new Set([...stale, ...read.filter((m) => m.taskId && rerunIds.has(m.taskId)).map((m) => m.position)]);
  });
  await recordAction(deps.data.audit, {
    by,
    action: "requeue-all",
    target: "dead letters",
    count: removed - settled,
    detail: `${settled} settled removed, ${messages.length} kept`,
  });
  return { requeued: removed - settled, settled, kept: messages.length };
}

/** Removes every dead letter, if `expected` is still their count. */
export async function discardAllDeadLetters(
  deps: { queue: MessageReader; data: Queries },
  expected: number,
  by: string,
): Promise<{ removed: number }> {
  const { removed } = await readAll(deps.queue, "dead", expected, async (read) => new Set(read.map((m) => m.position)));
  await recordAction(deps.data.audit, { by, action: "discard-all", target: "dead letters", count: removed });
  return { removed };
}

/**
 * Removes the jobs waiting in the work queue, if `expected` is still their count, and
 * cancels their tasks (PENDING or RETRY; a task a worker holds runs on). Pause the workers
 * first for a count that holds still.
 */
export async function purgeWorkQueue(
  deps: DeadLetterDeps,
  expected: number,
  by: string,
): Promise<{ removed: number; cancelled: number }> {
  let cancelled = 0;
  const { removed } = await readAll(deps.queue, "work", expected, async (read) => {
    const ids = [...new Set(read.flatMap((m) => (m.taskId ? [m.taskId] : [])))];
    for (let i = 0; i < ids.length; i += BATCH) {
      const results = await Promise.all(ids.slice(i, i + BATCH).map((id) => deps.lifecycle.revoke(id)));
      cancelled += results.filter((r) => r.kind === "revoked").length;
    }
    return new Set(read.map((m) => m.position));
  });
  await recordAction(deps.data.audit, {
    by,
    action: "purge",
    target: "work queue",
    count: removed,
    detail: `${cancelled} tasks cancelled`,
  });
  return { removed, cancelled };
}

/** Reads `expected` messages and lets `decide` act on them, only if the queue still holds that many. */
async function readAll(queue: MessageReader, which: "dead" | "work", expected: number, decide: Decide) {
  if (expected > MAX_AT_ONCE)
    throw new ValidationError({
      expected: `At most ${MAX_AT_ONCE} at a time: act on the first ${MAX_AT_ONCE}, then on the rest.`,
    });
  let changed: number | undefined;
  const result = await queue.readMessages(which, expected, async (read, total) => {
    if (total !== expected || read.length !== expected) {
      changed = total !== expected ? total : read.length;
      return new Set();
    }
    return decide(read, total);
  });
  if (changed !== undefined) throw new CountChangedError(changed, expected);
  return result;
}

function gone(): NotFoundError {
  return new NotFoundError("That message is not in the queue any more: someone requeued or discarded it.");
}

async function whyNotRerun(data: Pick<Queries, "tasks">, taskId: string): Promise<Error> {
  const task = await data.tasks.task(taskId);
  if (!task) return new ConflictError("Its task no longer exists, so there is nothing to send again: discard it.");
  return new ConflictError(
    `Its task is ${task.state} now (sent again already, or finished): there is nothing to requeue. Discard the letter.`,
  );
}
