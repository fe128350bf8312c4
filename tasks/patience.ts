// What a worker does when the database fails during a job, in one place. The job is never
// dead-lettered for an outage, and no retry of its budget is spent on one:
//  - Each database step waits in the worker's hands while the database is away
//    (lib/store/databaseErrors.ts says when), the job unacknowledged, and is tried again
//    until the database answers. A result already fetched is then written, not fetched again.
//  - Past PATIENCE_MS the job goes back through a retry queue (tasks/job.ts). A run's end
//    the database would still not take is owed: kept here and written once it answers,
//    before the worker's next job and at each recovery sweep. Meanwhile its task stays
//    STARTED under a live worker, which no message may take over, so only this worker can end it.
// If the worker dies meanwhile, the broker redelivers the job as it would anyway.
import { TaskState } from "../generated/prisma/enums.ts";
import type { Lifecycle, OpenRun } from "../lib/lifecycle/lifecycle.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { isDatabaseUnavailable } from "../lib/store/databaseErrors.ts";

/** The longest pause between two tries (they start at 100 ms and double). */
export const DATABASE_WAIT_MAX_MS = 5000;
/** How long a job waits in hand for the database before it goes back through the broker. */
const PATIENCE_MS = 60_000;

type RunEnd = { run: OpenRun; outcome: "RETRY" | "FAILURE"; error: string; dueAt: number };

export function createPatience(lifecycle: Lifecycle, patienceMs = PATIENCE_MS) {
  const owed: RunEnd[] = [];
  let writing: Promise<void> | undefined;

  const write = (run: OpenRun, outcome: RunEnd["outcome"], error: string, delayMs: number) =>
    outcome === "RETRY" ? lifecycle.retry(run, error, delayMs) : lifecycle.fail(run, error);

  /**
   * Writes the owed ends, oldest first; rejects while the database still fails. One writer at a time: an end written
   * twice would be recorded as skipped the second time.
   */
  const writeOwed = (): Promise<void> =>
    owed.length === 0
      ? Promise.resolve()
      : (writing ??= (async () => {
          while (owed.length > 0) {
            const { run, outcome, error, dueAt } = owed[0]!;
            await write(run, outcome, error, Math.max(0, dueAt - Date.now()));
            owed.shift();
          }
        })().finally(() => (writing = undefined)));

  return {
    /** The lifecycle steps a job takes, each waiting in hand for the database. */
    steps: (log: Logger) => patientSteps(lifecycle, log, patienceMs),
    /** Ends a run (one try, no waiting); if the database will not take it, owes it. */
    async endRun(run: OpenRun, outcome: RunEnd["outcome"], error: string, delayMs: number): Promise<void> {
      await write(run, outcome, error, delayMs).catch(() =>
        owed.push({ run, outcome, error, dueAt: Date.now() + delayMs }),
      );
    },
    writeOwed,
    /** How many run ends are owed. */
    owed: () => owed.length,
  };
}

export type Patience = ReturnType<typeof createPatience>;

/** step(again) until it succeeds or fails for another reason; again is true from the second try. */
async function untilDatabaseAnswers<T>(
  step: (again: boolean) => Promise<T>,
  log: Logger,
  patienceMs: number,
): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (let tries = 0; ; tries++) {
    try {
      return await step(tries > 0);
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() >= deadline) throw err;
      if (tries === 0)
        log.warn({ reason: (err as Error).message }, "database unavailable; the job waits in hand until it answers");
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(DATABASE_WAIT_MAX_MS, 100 * 2 ** tries, Math.max(0, deadline - Date.now()))),
      );
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
function patientSteps(lifecycle: Lifecycle, log: Logger, patienceMs: number): Lifecycle {
  const patiently = <T>(step: (again: boolean) => Promise<T>) => untilDatabaseAnswers(step, log, patienceMs);
  const ended = async (run: OpenRun, state: TaskState) => {
    const row = await lifecycle.task(run.taskId);
    return row?.state === state && row.attemptCount === run.number ? row : undefined;
  };
  return {
    ...lifecycle,
    claim: (job) => patiently((again) => lifecycle.claim(again ? { ...job, redelivered: true } : job)),
    succeed: (run, urls) =>
      patiently(async (again) => {
        const row = again ? await ended(run, TaskState.SUCCESS) : undefined;
        return row ? { task: row } : lifecycle.succeed(run, urls);
      }),
    retry: (run, error, delayMs) =>
      patiently(
        async (again) => (again && (await ended(run, TaskState.RETRY))) || lifecycle.retry(run, error, delayMs),
      ),
    fail: (run, error) =>
      patiently(async (again) => (again && (await ended(run, TaskState.FAILURE))) || lifecycle.fail(run, error)),
  };
}
