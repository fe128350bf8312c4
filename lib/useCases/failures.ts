// Sending failed work again by hand (Flower's and Bull Board's most asked-for button): one
// FAILURE or REVOKED task, or every failure that shares an error. A group is retried only
// for the count the person saw (a dry run first), and in batches, so a bulk retry of
// thousands never holds the database or floods the broker at once.
import { setImmediate as nextTurn } from "node:timers/promises";
import { TaskState } from "../../generated/prisma/enums.ts";
import { recordAction } from "./audit.ts";
import type { Queries } from "../store/queries/index.ts";
import { ConflictError, CountChangedError, NotFoundError } from "../platform/errors.ts";
import { toTaskView, type TaskView } from "../lifecycle/shapes.ts";
import { asDispatched, type TaskDeps } from "./tasks.ts";
import { isUuid } from "../lifecycle/validation.ts";

/** Tasks sent again per transaction by a group retry. */
const BATCH = 200;
/** Distinct error texts read to build the groups: the most frequent first. */
const ERROR_TEXTS = 1000;

export interface FailureGroup {
  /** The error with its numbers and ids blanked out: what the group is called and asked by. */
  fingerprint: string;
  /** One of the group's errors as stored, for a person to read. */
  example: string;
  count: number;
}

/** Sends one FAILURE or REVOKED task again with a new retry budget; `by` is recorded on it. */
export async function retryTask(deps: TaskDeps, id: string, by: string): Promise<{ task: TaskView; queued: boolean }> {
  if (!isUuid(id)) throw new NotFoundError("There is no task with that id.");
  const [rerun] = await deps.lifecycle.rerun([id], by);
  if (!rerun) {
    const found = await deps.data.tasks.task(id);
    if (!found) throw new NotFoundError("There is no task with that id.");
    throw new ConflictError(`Task ${id} is ${found.state}; only FAILURE or REVOKED tasks can be retried.`);
  }
  await recordAction(deps.data.audit, { by, action: "retry", target: id });
  const { queued, queuedAt } = await deps.dispatcher.dispatch(rerun.job, deps.publishWaitMs);
  return { task: toTaskView(asDispatched(rerun.task, queuedAt)), queued };
}

/** "dog.ceo answered 503 after 1234 ms" and "... 987 ms" are one kind of failure. */
export function fingerprintOf(error: string): string {
  return error
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "…")
    .replace(/\d+(\.\d+)?/g, "#")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 200);
}

/** FAILURE tasks grouped by fingerprint, largest first, with the error texts each group is made of. */
async function groupsWithTexts(data: Pick<Queries, "tasks">): Promise<(FailureGroup & { errors: string[] })[]> {
  // The errors counted by the database; the fingerprints merge them here.
  const rows = await data.tasks.failureErrors(ERROR_TEXTS);
  const groups = new Map<string, FailureGroup & { errors: string[] }>();
  for (const row of rows) {
    const error = row.error ?? "";
    const fingerprint = fingerprintOf(error);
    const group = groups.get(fingerprint) ?? { fingerprint, example: error, count: 0, errors: [] };
    group.count += row.count;
    group.errors.push(error);
    groups.set(fingerprint, group);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.fingerprint.localeCompare(b.fingerprint));
}

/** The largest groups of failures, for the monitor and the API. */
export async function failureGroups(data: Pick<Queries, "tasks">, limit = 10): Promise<FailureGroup[]> {
  return (await groupsWithTexts(data))
    .slice(0, limit)
    .map(({ fingerprint, example, count }) => ({ fingerprint, example, count }));
}

/**
 * How many a group retry would send now (dryRun), or sends them: only when `expected` is
 * still the count, at most that many, BATCH per transaction with a turn of the event loop
 * between batches. The relay publishes them as they come.
 */
export async function retryGroup(
  deps: TaskDeps,
  fingerprint: string,
  opts: { expected?: number; by: string },
): Promise<{ matched: number; retried: number }> {
  if (opts.expected === undefined) return { matched: await groupCount(deps.data, fingerprint), retried: 0 };
  const expected = opts.expected;
  return oneAtATime(() => retryCounted(deps, fingerprint, expected, opts.by));
}

const groupCount = async (data: Pick<Queries, "tasks">, fingerprint: string) =>
  (await groupsWithTexts(data)).find((g) => g.fingerprint === fingerprint)?.count ?? 0;

let groupRetries: Promise<unknown> = Promise.resolve();
/**
 * Group retries take turns in this process, each counting afresh in its turn: two at once
 * both counted the whole group, and the one that lost every race answered "retried 0" as
 * if it had done what was asked.
 */
export function oneAtATime<T>(retry: () => Promise<T>): Promise<T> {
  const turn = groupRetries.then(retry, retry);
  groupRetries = turn.catch(() => {});
  return turn;
}

async function retryCounted(
  deps: TaskDeps,
  fingerprint: string,
  expected: number,
  by: string,
): Promise<{ matched: number; retried: number }> {
  const group = (await groupsWithTexts(deps.data)).find((g) => g.fingerprint === fingerprint);
  const matched = group?.count ?? 0;
  if (matched !== expected) throw new CountChangedError(matched, expected);
  let retried = 0;
  while (group && retried < matched) {
    const ids = await deps.data.search.ids(
      { state: TaskState.FAILURE, errorIn: group.errors },
      { take: Math.min(BATCH, matched - retried) },
    );
    if (ids.length === 0) break;
    const rerun = await deps.lifecycle.rerun(ids, by);
    // Not awaited: the relay publishes them in its own batches and the tasks show it.
    for (const { job } of rerun) void deps.dispatcher.dispatch(job, 0);
    retried += rerun.length;
    if (rerun.length === 0) break;
    await nextTurn();
  }
  // Another web sent them all first: what this person confirmed is not there any more.
  if (retried === 0 && matched > 0) throw new CountChangedError(0, expected);
  await recordAction(deps.data.audit, { by, action: "retry-group", target: fingerprint, count: retried });
  return { matched, retried };
}
