// Keeps the database from growing without bound: every worker, at start and then hourly,
// deletes sent outbox rows and the attempts of tasks finished more than RETENTION_DAYS
// ago. Tasks and photos are kept. Several workers pruning at once is harmless: a row is
// deleted once, and each statement is a bounded batch.
import type { Lifecycle } from "../lib/lifecycle/lifecycle.ts";
import type { Logger } from "../lib/platform/logger.ts";

const HOUR_MS = 60 * 60_000;

export function startRetention({
  lifecycle,
  logger,
  retentionDays,
  everyMs = HOUR_MS,
}: {
  lifecycle: Lifecycle;
  logger: Logger;
  retentionDays: number;
  everyMs?: number;
}) {
  let running: Promise<void> | undefined;
  const prune = () => {
    running ??= lifecycle
      .prune(retentionDays * 24 * HOUR_MS)
      .then((pruned) => {
        if (pruned.outbox + pruned.attempts > 0)
          logger.info({ ...pruned, retentionDays }, "pruned sent outbox rows and old attempts");
      })
      .catch((err) => logger.warn({ err }, "pruning old rows failed; will try again"))
      .finally(() => (running = undefined));
  };
  prune();
  const timer = setInterval(prune, everyMs);
  timer.unref();
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
    },
  };
}
