// `node dist/healthcheck.js [web|worker]`: the image's HEALTHCHECK. Exit 0 when the process
// this container runs can do its job, else 1 with one line saying why. Without an argument
// it looks in /proc for which entry file runs here (one image serves both).
// - web: GET /readyz (database and broker reachable) on this host's PORT.
// - worker: it has no HTTP port, but every worker publishes a heartbeat on the events
//   exchange every 2 s whose `ready` says the broker is connected and its database write
//   (the sign of life other workers' recovery sweeps read) just succeeded. The check
//   listens for one from this host (os.hostname() is the container's) and, where /proc
//   shows them, from one of this host's worker processes.
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { amqpNodeUrls, loadConfig, maskUrl, type Config } from "../lib/platform/config.ts";

type Role = "web" | "worker";
const ENTRY_FILES: Record<Role, RegExp> = {
  web: /(^|\/)(dist\/web\.js|web\.ts)$/,
  worker: /(^|\/)(dist\/worker\.js|tasks\/worker\.ts)$/,
};
/** Heartbeats come every 2 s at most (tasks/worker.ts); this lets two go missing. */
const WORKER_WAIT_MS = 5000;

/** Pids of node processes running this role's entry file, or undefined where /proc cannot tell. */
function processesOf(role: Role): number[] | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  return pids
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8")
          .split("\0")
          .some((arg) => ENTRY_FILES[role].test(arg));
      } catch {
        return false; // ended meanwhile, or not ours to read
      }
    })
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

async function checkWeb(config: Config): Promise<string> {
  const host = ["0.0.0.0", "::", ""].includes(config.host) ? "127.0.0.1" : config.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${config.port}/readyz`;
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) }).catch((err: Error) => {
    throw new Error(`web does not answer ${url}: ${err.cause instanceof Error ? err.cause.message : err.message}`);
  });
  const body = (await res.text()).slice(0, 200).replace(/\s+/g, " ");
  if (!res.ok) throw new Error(`web ${url} answered ${res.status}: ${body}`);
  return `web ready (${url})`;
}

async function checkWorker(config: Config): Promise<string> {
  const pids = processesOf("worker");
  if (pids && pids.length === 0) throw new Error("no worker process runs here");
  const host = os.hostname();
  const { default: amqplib } = await import("amqplib");
  // The first node of AMQP_URL's list that answers, as the worker itself picks one.
  let connection: Awaited<ReturnType<typeof amqplib.connect>> | undefined;
  const failures: string[] = [];
  for (const url of amqpNodeUrls(config.amqpUrl)) {
    connection = await amqplib
      .connect(url, { timeout: 3000 })
      .catch((err: Error) => void failures.push(`${maskUrl(url)}: ${err.message}`));
    if (connection) break;
  }
  if (!connection) throw new Error(`cannot reach the broker at ${failures.join("; ")}`);
  connection.on("error", () => {}); // reported through the calls below
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {}); // a missing exchange closes the channel: reported below
    const exchange = `${config.queueName}.events`;
    await channel.checkExchange(exchange).catch(() => {
      throw new Error(`the broker has no exchange ${exchange}: no worker has set up the queues yet`);
    });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, "worker.heartbeat");
    let notReady: string | undefined;
    const found = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), WORKER_WAIT_MS);
      void channel.consume(
        queue,
        (msg) => {
          if (!msg) return;
          let beat: { id?: string; host?: string; pid?: number; ready?: boolean };
          try {
            beat = JSON.parse(msg.content.toString());
          } catch {
            return;
          }
          if (beat.host !== host || (pids && !pids.includes(beat.pid ?? -1))) return; // another machine's worker
          if (!beat.ready) {
            notReady = `worker ${beat.id} says it is not ready (broker or database down)`;
            return;
          }
          clearTimeout(timer);
          resolve(`worker ${beat.id} ready`);
        },
        { noAck: true },
      );
    });
    if (!found)
      throw new Error(
        notReady ??
          `no heartbeat from a worker on ${host}${pids ? ` (pid ${pids.join(", ")})` : ""} within ${WORKER_WAIT_MS} ms`,
      );
    return found;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function main(): Promise<void> {
  const asked = process.argv[2];
  if (asked !== undefined && asked !== "web" && asked !== "worker")
    throw new Error(`usage: healthcheck [web|worker], got '${asked}'`);
  const role: Role | undefined = asked ?? (["web", "worker"] as const).find((r) => processesOf(r)?.length);
  if (!role) throw new Error("neither a web nor a worker runs here (say which: healthcheck web|worker)");
  console.log(await (role === "web" ? checkWeb : checkWorker)(loadConfig()));
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`unhealthy: ${err.message}`);
    process.exit(1);
  },
);
