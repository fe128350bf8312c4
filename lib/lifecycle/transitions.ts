// The task lifecycle's transitions: the states each may start from and the one it ends
// in. Both stores (lib/store/sqlite/statements.ts, lib/store/postgres/store.ts) build every guard from
// this table, and the pages' buttons (lib/lifecycle/shapes.ts) follow it; tests/transitions.test.ts
// tries each transition from every state.
import { TaskState } from "../../generated/prisma/enums.ts";

const { PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED } = TaskState;

export const TRANSITIONS = {
  claim: { from: [PENDING, RETRY, STARTED], to: STARTED },
  retry: { from: [STARTED], to: RETRY },
  succeed: { from: [STARTED], to: SUCCESS },
  fail: { from: [STARTED], to: FAILURE },
  /**
   * A job whose claim the database refused on every allowed try fails its task, wherever it was (a malformed message
   * leaves its task alone).
   */
  failPoison: { from: [PENDING, STARTED, RETRY], to: FAILURE },
  /** Cancelled by hand: a task no worker holds. */
  revoke: { from: [PENDING, RETRY], to: REVOKED },
  /** A running task stopped by hand (Flower's revoke with terminate): its open run ends REVOKED too. */
  stop: { from: [STARTED], to: REVOKED },
  /** Sent again by hand, from the monitor or the API, with a new retry budget. */
  rerun: { from: [FAILURE, REVOKED], to: PENDING },
} as const satisfies Record<string, { from: readonly TaskState[]; to: TaskState }>;

export type Transition = keyof typeof TRANSITIONS;

/** The states a task ends in: SUCCESS, FAILURE and REVOKED, the ones only a person's rerun leaves. */
export const FINISHED_STATES: readonly TaskState[] = Object.values(TaskState).filter((state) =>
  Object.entries(TRANSITIONS).every(
    ([name, { from }]) => name === "rerun" || !(from as readonly TaskState[]).includes(state),
  ),
);
