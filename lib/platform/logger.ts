// Structured logs (pino). Secrets never reach a log line: the broker URL is masked
// wherever it is printed, and pino redacts the usual credential fields as a backstop.
import { createRequire } from "node:module";
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, name: string, format: "json" | "pretty" = "json"): Logger {
  return pino({
    name,
    level,
    ...(format === "pretty" ? { transport: prettyTransport() } : {}),
    redact: { paths: ["password", "*.password", "amqpUrl", "*.amqpUrl", "req.headers.cookie"], censor: "***" },
    base: { pid: process.pid },
  });
}

/**
 * pino-pretty is a dev dependency: production installs and the image leave it out. pino
 * would throw a stack trace on a missing transport, and entry files create their logger
 * before their one-line error path (lib/platform/shutdown.ts) is in place, so a missing one stops
 * the process here, in that same one-line form.
 */
function prettyTransport() {
  try {
    // as pino resolves it: from this file (or the bundle in dist/)
    createRequire(import.meta.url).resolve("pino-pretty");
  } catch {
    console.error(
      "gendog: configuration error: LOG_FORMAT is pretty, but pino-pretty is not installed (a dev dependency, left out of production installs); unset LOG_FORMAT or set it to json",
    );
    process.exit(1);
  }
  return { target: "pino-pretty", options: { ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss" } };
}
