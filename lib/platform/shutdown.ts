// How an entry file (web, worker) lives: read config, start, and on SIGINT/SIGTERM shut
// down once, in order; a second signal exits at once.
import { loadConfig, type Config } from "./config.ts";
import { createLogger, type Logger } from "./logger.ts";

function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    shutdown().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
}

/** Runs each step even if an earlier one failed, so one stuck resource does not leak the rest. */
export async function runSteps(logger: Logger, steps: [string, () => Promise<unknown>][]): Promise<void> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      logger.warn({ err }, `shutdown step failed: ${name}`);
    }
  }
}

/** For entry files: a bad setting is one line naming the variable, not a stack trace. */
function exitOnStartupError(err: unknown): never {
  const message =
    err instanceof Error ? `${err.name === "ConfigError" ? "configuration error: " : ""}${err.message}` : String(err);
  console.error(`gendog: ${message}`);
  process.exit(1);
}

/**
 * A promise nobody handled or an exception nobody caught leaves the process in a state no
 * one planned for: it still ends it, as Node would, but says why in the log first.
 */
function logFatalErrors(logger: Logger): void {
  const die = (kind: string) => (err: unknown) => {
    logger.fatal({ err }, `${kind}; exiting`);
    process.exit(1);
  };
  process.on("unhandledRejection", die("unhandled promise rejection"));
  process.on("uncaughtException", die("uncaught exception"));
}

/** Runs an entry file: a bad setting or a failed start is one line, then exit 1. */
export function runProcess(
  name: string,
  start: (config: Config, logger: Logger) => Promise<{ stop(): Promise<void> }>,
): void {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    exitOnStartupError(err);
  }
  const logger = createLogger(config.logLevel, name, config.logFormat);
  logFatalErrors(logger);
  start(config, logger).then((running) => onShutdownSignal(logger, () => running.stop()), exitOnStartupError);
}
