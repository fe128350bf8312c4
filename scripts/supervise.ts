// The runner of `npm start` and `npm run demo`: the web and the worker side by side, their
// output prefixed (concurrently does that part). A process that dies (a crash, an
// out-of-memory kill, `kill -9`) is started again after a pause that doubles with each quick
// death (1 s, 2 s, 4 s … at most 30 s) and starts over once a run lasted a minute; the others
// run on. concurrently's own --restart-tries cannot do this: its exponential delay grows
// without a cap and never resets, and --kill-others-on-fail stops the web when the worker
// dies, restart or not. Ctrl-C or SIGTERM stops them all and nothing is restarted.
//
//   node dist/supervise.js "web=node dist/web.js" "worker=node dist/worker.js"
import { concurrently, type Command } from "concurrently";
import { pathToFileURL } from "node:url";

export interface SupervisedCommand {
  name: string;
  command: string;
  env?: Record<string, string>;
}

export interface SuperviseOptions {
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** A run this long counts as healthy: the next death waits firstDelayMs again. */
  healthyAfterMs?: number;
}

/** The pause before restart number `deaths` (1 = the first quick death). */
export function restartDelay(deaths: number, firstMs = 1000, maxMs = 30_000): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, deaths - 1));
}

export function supervise(commands: SupervisedCommand[], options: SuperviseOptions = {}) {
  const { firstDelayMs = 1000, maxDelayMs = 30_000, healthyAfterMs = 60_000 } = options;
  let stopping = false;
  const run = concurrently(commands, { prefixColors: ["blue", "magenta", "green"], killOthersOn: [], restartTries: 0 });
  const timers = new Set<NodeJS.Timeout>();
  const failed = new Set<string>();
  // Done once nothing runs and nothing waits to be started again (concurrently's own result
  // would settle while a restart is pending).
  let finish: (ok: boolean) => void;
  const done = new Promise<boolean>((resolve) => (finish = resolve));
  run.result.catch(() => {});
  const settleIfIdle = () => {
    if (timers.size === 0 && run.commands.every((c) => c.state !== "started")) finish(failed.size === 0);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      stopping = true;
      timers.forEach(clearTimeout);
      timers.clear();
      settleIfIdle();
    });
  }
  for (const command of run.commands) watch(command);

  function watch(command: Command) {
    let deaths = 0;
    let startedAt = Date.now();
    command.close.subscribe(({ exitCode }) => {
      if (exitCode === 0) failed.delete(command.name);
      else failed.add(command.name);
      if (stopping || exitCode === 0) return settleIfIdle();
      deaths = Date.now() - startedAt >= healthyAfterMs ? 1 : deaths + 1;
      const wait = restartDelay(deaths, firstDelayMs, maxDelayMs);
      console.error(`[supervise] ${command.name} exited (${exitCode}); starting it again in ${wait / 1000} s`);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (stopping) return settleIfIdle();
        startedAt = Date.now();
        command.start();
      }, wait);
      timers.add(timer);
    });
  }

  return {
    /**
     * Resolves when all stopped well, rejects when one did not (after Ctrl-C or SIGTERM, or a failure with nothing left
     * running).
     */
    result: done.then((ok) => {
      if (!ok) throw new Error(`stopped with a failure: ${[...failed].join(", ")}`);
    }),
    commands: run.commands,
  };
}

/** "name=command" arguments. */
export function commandsFrom(args: string[]): SupervisedCommand[] {
  return args.map((arg) => {
    const at = arg.indexOf("=");
    if (at < 1) throw new Error(`expected name=command, got ${JSON.stringify(arg)}`);
    return { name: arg.slice(0, at), command: arg.slice(at + 1) };
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  supervise(commandsFrom(process.argv.slice(2))).result.then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
