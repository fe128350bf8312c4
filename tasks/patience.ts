// A worker's database steps while the database is away (lib/store/databaseErrors.ts says when):
// the job stays in the worker's hands, unacknowledged, and the step is tried again until the
// database answers, so a result already fetched is written once it is back instead of the
// job being run again, and no retry of the job's budget is spent on the outage. Past the
// patience the job goes back through the broker (tasks/job.ts), still never dead-lettered
// for it. If the worker dies meanwhile, the broker redelivers the job as it would anyway.
import { isDatabaseUnavailable } from "../lib/store/databaseErrors.ts";
import { TaskState } from "../generated/prisma/enums.ts";
import type { Lifecycle, OpenRun } from "../lib/lifecycle/lifecycle.ts";
import type { Logger } from "../lib/platform/logger.ts";

/** The longest pause between two tries (they start at 100 ms and double). */
export const DATABASE_WAIT_MAX_MS = 5000;
/** How long a job waits in hand for the database before it goes back through the broker. */
const PATIENCE_MS = 60_000;

/** step(again) until it succeeds or fails for another reason; again is true from the second try. */
export async function untilDatabaseAnswers<T>(step: (again: boolean) => Promise<T>, log: Logger, patienceMs = PATIENCE_MS): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (let tries = 0; ; tries++) {
    try {
      return await step(tries > 0);
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() >= deadline) throw err;
      if (tries === 0) log.warn({ reason: (err as Error).message }, "database unavailable; the job waits in hand until it answers");
      await new Promise((resolve) => setTimeout(resolve, Math.min(DATABASE_WAIT_MAX_MS, 100 * 2 ** tries, Math.max(0, deadline - Date.now()))));
    }
  }
}

/**
 * The lifecycle steps a job takes, each waiting for the database. A step tried again may
 * have committed the first time with only its answer lost. A claim is then tried as a
 * redelivery, which takes over a STARTED run of this attempt (marked LOST) rather than
 * skipping the task. A run's end is first looked for in the task row: the task in that
 * state at this run's number can only be this run's doing, and ending it again would
 * find the guard closed and record the run as SKIPPED over its real outcome.
 */
export function patientLifecycle(lifecycle: Lifecycle, log: Logger): Lifecycle {
  const ended = async (run: OpenRun, state: TaskState) => {
    const row = await lifecycle.task(run.taskId);
    return row?.state === state && row.attemptCount === run.number ? row : undefined;
  };
  return {
    ...lifecycle,
    claim: (job) => untilDatabaseAnswers((again) => lifecycle.claim(again ? { ...job, redelivered: true } : job), log),
    succeed: (run, urls) =>
      untilDatabaseAnswers(async (again) => {
        const row = again ? await ended(run, TaskState.SUCCESS) : undefined;
        return row ? { task: row } : lifecycle.succeed(run, urls);
      }, log),
    retry: (run, error, delayMs) => untilDatabaseAnswers(async (again) => (again && (await ended(run, TaskState.RETRY))) || lifecycle.retry(run, error, delayMs), log),
    fail: (run, error) => untilDatabaseAnswers(async (again) => (again && (await ended(run, TaskState.FAILURE))) || lifecycle.fail(run, error), log),
  };
}
