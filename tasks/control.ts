// What a worker hears on the events exchange's control.* keys: a web's "listening" (make task
// events again) and the monitor's pause and resume, which it obeys only when signed with the
// key it shares with the web (lib/monitor/controlMessages.ts), and a stop, which abandons a task's run
// here if this worker holds it (the web has already recorded the task REVOKED). Anything else is dropped and logged,
// at most once per LOG_EVERY_MS, so a flood of forgeries cannot flood the log.
import { controlChecker, type ControlAction } from "../lib/monitor/controlMessages.ts";
import type { Logger } from "../lib/platform/logger.ts";
import type { Broker } from "./queue.ts";

const LOG_EVERY_MS = 10_000;
const ACTIONS: Record<string, ControlAction | undefined> = {
  "control.pause": "pause",
  "control.resume": "resume",
  "control.stop": "stop",
};

export interface ControlOptions {
  broker: Broker;
  /** The shared key; without one this worker obeys no pause or resume. */
  key: Buffer | undefined;
  workerId: string;
  /** When this worker started (ms): a control message made before then is a replay. */
  startedAt: number;
  logger: Logger;
  /** Called once a pause or resume has taken (the worker sends a heartbeat to show it). */
  changed(): void;
  /** Abandons the run of this task if this worker holds it; true if it did. */
  stop?(taskId: string): boolean;
}

export function listenForControl({
  broker,
  key,
  workerId,
  startedAt,
  logger,
  changed,
  stop,
}: ControlOptions): Promise<{ close(): Promise<void> }> {
  const check = key ? controlChecker(key, startedAt) : undefined;
  let ignored = 0;
  let loggedAt = 0;
  const ignore = (action: ControlAction, reason: string) => {
    ignored += 1;
    if (Date.now() - loggedAt < LOG_EVERY_MS) return;
    logger.warn({ action, reason, ignored }, "control message ignored: not signed by a web with this worker's key");
    loggedAt = Date.now();
    ignored = 0;
  };

  return broker.subscribeEvents("control.*", (routingKey, payload) => {
    // a web opened a page: tell it what happens
    if (routingKey === "control.listening") return broker.taskEventsWanted();
    const action = ACTIONS[routingKey];
    if (!action) return;
    if (!check) return ignore(action, "this worker has no CONTROL_SECRET or ADMIN_PASSWORD");
    const checked = check(action, payload);
    if (!checked.ok) return ignore(action, checked.reason);
    if (checked.worker !== undefined && checked.worker !== workerId) return;
    if (action === "stop") {
      if (checked.task && stop?.(checked.task))
        logger.info({ taskId: checked.task }, "stopped a running task: its dog.ceo call is abandoned");
      return;
    }
    // A resume opens consumers again, which fails if the channel closes meanwhile: logged,
    // never an unhandled rejection (which ends the process).
    void (action === "pause" ? broker.pauseConsuming() : broker.resumeConsuming()).then(
      () => {
        logger.info({ action }, action === "pause" ? "paused: taking no new jobs" : "resumed: taking jobs again");
        changed();
      },
      (err: unknown) => logger.warn({ err, action }, `could not ${action}; the next heartbeat shows what holds`),
    );
  });
}
