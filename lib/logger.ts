// Structured logs (pino). Secrets never reach a log line: the broker URL is masked
// wherever it is printed, and pino redacts the usual credential fields as a backstop.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, name: string, format: "json" | "pretty" = "json"): Logger {
  return pino({
    name,
    level,
    ...(format === "pretty" ? { transport: { target: "pino-pretty", options: { ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss" } } } : {}),
    redact: { paths: ["password", "*.password", "amqpUrl", "*.amqpUrl", "req.headers.cookie"], censor: "***" },
    base: { pid: process.pid },
  });
}
