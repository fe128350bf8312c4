// The recovery sweep, run by every worker: no task is left behind when a message is lost
// between the database and the broker. It sends to the work queue again
//  - a RETRY task overdue by the grace period (its retry publish was never confirmed),
//  - a STARTED task whose worker has been silent for the grace period,
//  - a PENDING task no run claimed ten grace periods after the broker took its job,
// and relays outbox rows older than the grace period (the web that wrote them is gone).
// Each task is leased in the database before it is sent, so several workers sweeping at
// once send it once; a duplicate after a crash is skipped by the worker's claim.
import type { Lifecycle } from "../lib/lifecycle/lifecycle.ts";
import { jobBody } from "../lib/lifecycle/shapes.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { isRerun } from "./messages.ts";
import { OutboxRelay } from "./outbox.ts";
import type { Broker } from "./queue.ts";

export interface RecoveryOptions {
  lifecycle: Lifecycle;
  broker: Broker;
  logger: Logger;
  graceMs: number;
  /** Run first at each sweep: the worker writes how runs ended that it could not write at the time. */
  beforeSweep?: () => Promise<void>;
}

export function startRecoverySweep({ lifecycle, broker, logger, graceMs, beforeSweep }: RecoveryOptions) {
  const intervalMs = Math.max(100, Math.min(5000, Math.round(graceMs / 2)));
  const staleOutbox = new OutboxRelay({ lifecycle, broker, logger, pollMs: intervalMs, minAgeMs: graceMs });
  let running: Promise<void> | undefined;

  async function sweep(): Promise<void> {
    await beforeSweep?.();
    if (!broker.isConnected()) return;
    for (const { task, attempt } of await lifecycle.recover(graceMs)) {
      try {
        const body = jobBody(task);
        await broker.publishJob(Buffer.from(body), { messageId: task.id, attempt, bulk: isRerun(body) });
        logger.warn(
          { taskId: task.id, state: task.state, attempt },
          "recovered a task whose next run was lost; sent it again",
        );
      } catch (err) {
        // Its lease runs out after the grace period and the next sweep tries again.
        logger.warn({ taskId: task.id, err }, "could not send a recovered task yet");
      }
    }
  }

  const timer = setInterval(() => {
    running ??= sweep()
      .catch((err) => logger.error({ err }, "recovery sweep failed; will try again"))
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  staleOutbox.start();

  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await staleOutbox.stop();
      await running;
    },
  };
}
