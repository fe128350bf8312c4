// A warning for messages dropped as forged or broken. Whoever sends them can send hundreds a
// second: the first is logged at once, the rest at most once per interval, with how many
// were dropped since the line before.
import type { Logger } from "./logger.ts";

const INTERVAL_MS = 10_000;

export function dropLog(
  logger: Logger,
  message: string,
  intervalMs = INTERVAL_MS,
): (details: Record<string, unknown>) => void {
  let quietUntil = 0;
  let unlogged = 0;
  let latest: Record<string, unknown> = {};
  let flush: NodeJS.Timeout | undefined;
  const write = () => {
    flush = undefined;
    logger.warn({ ...latest, dropped: unlogged }, message);
    unlogged = 0;
    quietUntil = Date.now() + intervalMs;
  };
  return (details) => {
    unlogged += 1;
    latest = details;
    if (Date.now() >= quietUntil) {
      clearTimeout(flush);
      write();
    } else if (!flush) {
      // The ones dropped during the quiet are told when it ends, even if no more come.
      flush = setTimeout(write, quietUntil - Date.now());
      flush.unref();
    }
  };
}
