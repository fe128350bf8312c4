// Child processes for the bench: the web and the worker exactly as production starts them
// (one node process each, so the pid we read /proc of is the real one), the dog.ceo
// stand-in and the bare Express floor. Every wait here is bounded.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { startCommand } from "../scripts/startCommand.ts";
import { fileURLToPath } from "node:url";
import amqplib from "amqplib";
import { topologyQueueNames } from "../tasks/broker/topology.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const AMQP_URL = process.env.BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

/** Production runs compiled JavaScript when `npm run build` made it (it saves ~80 MB per process against tsx). */
export function entryMode(): { mode: "compiled" | "tsx"; web: string[]; worker: string[] } {
  const web = path.join(ROOT, "dist", "web.js");
  const worker = path.join(ROOT, "dist", "worker.js");
  // With the node flags npm start gives them (heap sizes, source maps).
  const flags = (entry: "web" | "worker") => startCommand(entry).split(" ").slice(1, -1);
  if (existsSync(web) && existsSync(worker))
    return { mode: "compiled", web: [...flags("web"), web], worker: [...flags("worker"), worker] };
  return { mode: "tsx", web: ["--import", "tsx", "web.ts"], worker: ["--import", "tsx", "tasks/worker.ts"] };
}

export interface Child {
  name: string;
  pid: number;
  /** How it ended ("exit code 1", "signal SIGKILL"), while it has not: undefined. */
  ended(): string | undefined;
  /** The last lines the child printed, for the report when something fails. */
  tail(): string;
  stop(): Promise<void>;
}

export function startChild(name: string, args: string[], env: Record<string, string>): Child {
  // Only the basics are inherited, so a variable in the caller's shell (WORKER_CONCURRENCY...) cannot skew a run.
  const inherited = Object.fromEntries(
    ["PATH", "HOME", "TMPDIR", "LANG"].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])),
  );
  // BENCH_NODE_ARGS go before web's and worker's own (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to see
  // where a run's CPU goes: Node refuses --cpu-prof in NODE_OPTIONS).
  const extra =
    process.env.BENCH_NODE_ARGS && (name === "web" || name === "worker")
      ? process.env.BENCH_NODE_ARGS.split(" ").filter(Boolean)
      : [];
  const proc: ChildProcess = spawn(process.execPath, [...extra, ...args], {
    cwd: ROOT,
    env: { ...inherited, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  // BENCH_LOG_DIR keeps each child's whole output, for a closer look at a run.
  const logFile = process.env.BENCH_LOG_DIR
    ? path.join(process.env.BENCH_LOG_DIR, `${name}-${proc.pid}.log`)
    : undefined;
  const keep = (chunk: Buffer) => {
    if (logFile) appendFileSync(logFile, chunk);
    lines.push(...chunk.toString().split("\n").filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 30));
  };
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return {
    name,
    pid: proc.pid!,
    ended: () =>
      proc.exitCode !== null
        ? `exit code ${proc.exitCode}`
        : proc.signalCode !== null
          ? `signal ${proc.signalCode}`
          : undefined,
    tail: () => lines.map((line) => `  [${name}] ${line}`).join("\n"),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM"); // the app's graceful shutdown; a worker lets jobs in hand finish
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls check() until it is true, or throws naming `what` (and the child's last words). */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  child?: Child,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (child?.ended()) throw new Error(`${child.name} ended (${child.ended()}) before ${what}\n${child.tail()}`);
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${child ? `\n${child.tail()}` : ""}`);
    await sleep(100);
  }
}

export const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

/** Resident memory (VmRSS) and CPU seconds (utime + stime) of a live process, from /proc. */
export function procStats(pid: number): { rssMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").at(-1)!.trim().split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of the whole line
  return { rssMb: rssKb / 1024, cpuS: ticks / clockTicks() };
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  try {
    ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** A worker is ready when it consumes the work queue (the broker tells us, no log parsing). */
export async function consumers(queue: string): Promise<number> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {}); // a queue not declared yet closes the channel: that is "0"
    return (await channel.checkQueue(queue)).consumerCount;
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Removes what the app declared for this queue name (it uses the default retry settings here). */
export async function deleteQueues(queue: string): Promise<void> {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    for (const name of topologyQueueNames(queue, { baseMs: 1000, maxMs: 60_000 }))
      await channel.deleteQueue(name).catch(() => {});
    await channel.deleteExchange(`${queue}.events`).catch(() => {});
  } finally {
    await connection.close().catch(() => {});
  }
}
