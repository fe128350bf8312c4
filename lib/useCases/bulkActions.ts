// Acting on many tasks at once (Bull Board's and Oban Web's bulk actions): the tasks ticked
// in the monitor's list, or every task a search finds, retried or cancelled. Like a group
// retry, a dry run says how many it would act on, and the action runs only while that is
// still the count the person confirmed; it takes its turn with the group retries of this web.
import { recordAction } from "./audit.ts";
import { setImmediate as nextTurn } from "node:timers/promises";
import { TaskState } from "../../generated/prisma/enums.ts";
import { CountChangedError, ValidationError } from "../platform/errors.ts";
import { oneAtATime } from "./failures.ts";
import { matchOf, type TaskFilter } from "./taskSearch.ts";
import type { TaskMatch } from "../store/queries/index.ts";
import type { TaskDeps } from "./tasks.ts";
import { isUuid } from "../lifecycle/validation.ts";

/** The most tasks one action touches: a larger search is refused, to be narrowed first. */
export const BULK_MAX = 10_000;
/** Tasks acted on per batch, with a turn of the event loop between batches. */
const BATCH = 200;

export const BULK_ACTIONS = {
  retry: { states: [TaskState.FAILURE, TaskState.REVOKED], why: "only FAILURE or REVOKED tasks can be retried" },
  cancel: { states: [TaskState.PENDING, TaskState.RETRY], why: "only PENDING or RETRY tasks can be cancelled" },
} as const;
export type BulkAction = keyof typeof BULK_ACTIONS;

/** What to act on: ticked ids, or every task a search finds (the monitor's filter). */
export type BulkTarget = { ids: string[] } | { search: TaskFilter };

export interface BulkResult {
  action: BulkAction;
  /** Tasks the selection or search holds now. */
  selected: number;
  /** Of those, the ones this action applies to: the count to confirm. */
  matched: number;
  /** Acted on (0 on a dry run). */
  done: number;
  /** Not acted on, by why: a state the action does not apply to, "missing", or "changed meanwhile". */
  skipped: Record<string, number>;
  why: string;
}

export function bulkActionFrom(value: unknown): BulkAction {
  if (typeof value === "string" && Object.hasOwn(BULK_ACTIONS, value)) return value as BulkAction;
  throw new ValidationError({ action: `The action is one of ${Object.keys(BULK_ACTIONS).join(", ")}.` });
}

/** Ticked ids as a form or JSON sends them: one or many, each a task id, at most BULK_MAX. */
export function idsFrom(value: unknown): string[] {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  if (list.length > BULK_MAX) throw new ValidationError({ ids: `Select at most ${BULK_MAX} tasks at once.` });
  if (!list.every((id) => typeof id === "string" && isUuid(id)))
    throw new ValidationError({ ids: "Each selected task is named by its id." });
  return [...new Set(list as string[])];
}

/** Counts what `action` would act on (no `expected`), or acts while `expected` is still that count. */
export async function bulkAct(
  deps: TaskDeps,
  action: BulkAction,
  target: BulkTarget,
  opts: { expected?: number; by: string },
): Promise<BulkResult> {
  const scope = scopeOf(target);
  if (opts.expected === undefined) return { action, ...(await counted(deps, action, scope, target)), done: 0 };
  const expected = opts.expected;
  return oneAtATime(async () => {
    const seen = await counted(deps, action, scope, target);
    if (seen.matched !== expected) throw new CountChangedError(seen.matched, expected);
    const done = await act(deps, action, scope, expected, opts.by);
    const what =
      "ids" in target ? `${target.ids.length} selected tasks` : `every task matching ${JSON.stringify(target.search)}`;
    await recordAction(deps.data.audit, {
      by: opts.by,
      action: action === "retry" ? "bulk-retry" : "bulk-cancel",
      target: what,
      count: done,
    });
    // A task that moved between the count and its batch (a worker took it) is skipped, and said so.
    const skipped = { ...seen.skipped, ...(done < expected ? { "changed meanwhile": expected - done } : {}) };
    return { action, ...seen, skipped, done };
  });
}

function scopeOf(target: BulkTarget): TaskMatch {
  if ("ids" in target) {
    if (target.ids.length === 0)
      throw new ValidationError({ ids: "Tick the tasks to act on, or choose every task matching the search." });
    return { ids: target.ids };
  }
  return matchOf(target.search);
}

async function counted(deps: TaskDeps, action: BulkAction, scope: TaskMatch, target: BulkTarget) {
  const { states, why } = BULK_ACTIONS[action];
  const groups = Object.entries(await deps.data.search.countByState(scope)) as [TaskState, number][];
  const applies = (state: TaskState) => (states as readonly TaskState[]).includes(state);
  const selected = groups.reduce((sum, [, n]) => sum + n, 0);
  const matched = groups.filter(([state]) => applies(state)).reduce((sum, [, n]) => sum + n, 0);
  if (matched > BULK_MAX)
    throw new ValidationError({
      search: `This would act on ${matched} tasks; one action takes at most ${BULK_MAX}. Narrow the search.`,
    });
  const skipped: Record<string, number> = {};
  for (const [state, n] of groups) if (!applies(state)) skipped[state] = n;
  if ("ids" in target && target.ids.length > selected) skipped.missing = target.ids.length - selected;
  return { selected: "ids" in target ? target.ids.length : selected, matched, skipped, why };
}

/** Acts on at most `limit` of the scope's tasks the action applies to, a batch at a time. */
async function act(deps: TaskDeps, action: BulkAction, scope: TaskMatch, limit: number, by: string): Promise<number> {
  const states = [...BULK_ACTIONS[action].states];
  let done = 0;
  let after: string | undefined;
  while (done < limit) {
    // By id from where the last batch ended: a task that could not be acted on is not read again.
    const ids = await deps.data.search.ids(scope, { states, after, take: Math.min(BATCH, limit - done) });
    if (ids.length === 0) break;
    after = ids[ids.length - 1]!;
    if (action === "retry") {
      const rerun = await deps.lifecycle.rerun(ids, by);
      // Not awaited: the relay publishes them in its own batches and the tasks show it.
      for (const { job } of rerun) void deps.dispatcher.dispatch(job, 0);
      done += rerun.length;
    } else {
      for (const id of ids) if ((await deps.lifecycle.revoke(id)).kind === "revoked") done += 1;
    }
    await nextTurn();
  }
  return done;
}
