// A RabbitMQ cluster of this test's own: nodes started from the installed rabbitmq-server
// with a temporary HOME (so their own Erlang cookie), their own ports, data and logs, and
// listening on loopback only. The machine's own node (rabbit@localhost on 5672) is never
// touched: every command here names one of this cluster's nodes.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./faults.ts";

const run = promisify(execFile);
const BIN = "/usr/lib/rabbitmq/bin";
const SERVER = `${BIN}/rabbitmq-server`;
const CTL = `${BIN}/rabbitmqctl`;

/** Why a cluster cannot be started here, or undefined when it can. */
export function clusterUnavailable(): string | undefined {
  if (!existsSync(SERVER) || !existsSync(CTL))
    return `rabbitmq-server is not installed (no ${SERVER}); a test cluster needs its own nodes`;
  return undefined;
}

export interface RabbitNode {
  /** name@localhost */
  name: string;
  port: number;
  url: string;
  pidFile: string;
  /** Still running, as far as this cluster knows (kill() and stop() clear it). */
  up: boolean;
}

export interface QueueInfo {
  leader: string;
  members: string[];
  online: string[];
}

export interface RabbitCluster {
  nodes: RabbitNode[];
  /** Every node's URL, comma-separated: an AMQP_URL node list. */
  amqpUrl: string;
  /** rabbitmqctl on one of this cluster's nodes. */
  ctl(node: RabbitNode, ...args: string[]): Promise<string>;
  /** The node that leads a quorum queue (from a running node's view). */
  leaderOf(queue: string): Promise<RabbitNode>;
  /** The members of a quorum queue, and those of them online. */
  membersOf(queue: string): Promise<QueueInfo>;
  /** Every queue's leader and members, in one rabbitmqctl call (each takes a second or two). */
  queueInfo(): Promise<Record<string, QueueInfo>>;
  /** SIGKILLs a node's Erlang VM (its beam process, found by its pid file). */
  kill(node: RabbitNode): Promise<void>;
  /** Starts a killed node again on its own data: it rejoins the cluster. */
  restart(node: RabbitNode): Promise<void>;
  /**
   * Ends every node (SIGKILL, by pid file, then whatever of this cluster is left, by its names) and removes every file
   * this cluster made.
   */
  stop(): Promise<void>;
}

/**
 * Starts `size` nodes in parallel and joins the others to the first. Throws (after
 * cleaning up) if they do not boot or join within the time given.
 */
export async function startCluster(size = 3, timeoutMs = 120_000): Promise<RabbitCluster> {
  const base = await mkdtemp(path.join(os.tmpdir(), "gendog-rabbit-"));
  const home = path.join(base, "home");
  await mkdir(home);
  // Nodes of one cluster share a cookie; nobody else knows it.
  await writeFile(path.join(home, ".erlang.cookie"), randomBytes(20).toString("hex"));
  await chmod(path.join(home, ".erlang.cookie"), 0o400);
  const prefix = `gendog${randomBytes(3).toString("hex")}`;
  const epmdPort = await freePort();
  const nodes: (RabbitNode & { env: NodeJS.ProcessEnv })[] = [];
  for (let i = 0; i < size; i++) {
    const name = `${prefix}n${i + 1}@localhost`;
    const dir = path.join(base, `n${i + 1}`);
    await mkdir(dir);
    const port = await freePort();
    const distPort = await freePort();
    const config = path.join(dir, "rabbitmq.conf");
    await writeFile(config, `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users.guest = false\n`);
    await writeFile(path.join(dir, "enabled_plugins"), "[].\n");
    await writeFile(path.join(dir, "rabbitmq-env.conf"), "");
    const pidFile = path.join(dir, "rabbit.pid");
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      LANG: "C.UTF-8",
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
      RABBITMQ_LOG_BASE: path.join(dir, "log"),
      RABBITMQ_PID_FILE: pidFile,
      RABBITMQ_CONFIG_FILE: config,
      // Not the machine's own files: no plugins (the management one would want port 15672), no env overrides.
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
      RABBITMQ_CONF_ENV_FILE: path.join(dir, "rabbitmq-env.conf"),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, "advanced.config"),
      // Erlang distribution on loopback only.
      ERL_FLAGS: "-kernel inet_dist_use_interface {127,0,0,1}",
      // An epmd of this cluster's own (the first node starts it), so nothing is left registered
      // with the machine's, and stop() can end it.
      ERL_EPMD_ADDRESS: "127.0.0.1",
      ERL_EPMD_PORT: String(epmdPort),
      // A node or CLI call that crashes leaves its dump in this cluster's folder, not the project's.
      ERL_CRASH_DUMP: path.join(dir, "erl_crash.dump"),
    };
    nodes.push({ name, port, url: `amqp://guest:guest@127.0.0.1:${port}`, pidFile, up: false, env });
  }

  const ctl = async (node: RabbitNode, ...args: string[]) => {
    const env = nodes.find((n) => n.name === node.name)!.env;
    const { stdout } = await run(CTL, ["-n", node.name, "-q", ...args], { env, cwd: base, timeout: 60_000 });
    return stdout;
  };

  const queueInfo = async () => {
    const asker = nodes.find((n) => n.up);
    if (!asker) throw new Error("no node of the cluster is up");
    const out = await ctl(asker, "list_queues", "--no-table-headers", "name", "leader", "members", "online");
    const list = (text: string) =>
      text
        .split(",")
        .map((s) => s.trim().replace(/^'|'$/g, ""))
        .filter(Boolean);
    const queues: Record<string, QueueInfo> = {};
    for (const line of out.split("\n")) {
      const match = /^(\S+)\s+(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s*$/.exec(line.trim());
      if (match) queues[match[1]!] = { leader: match[2]!, members: list(match[3]!), online: list(match[4]!) };
    }
    return queues;
  };

  const killNode = async (node: RabbitNode) => {
    node.up = false;
    const pid = Number((await readFile(node.pidFile, "utf8").catch(() => "")).trim());
    if (!pid) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return; // already gone
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && isAlive(pid)) await sleep(50);
  };

  const cluster: RabbitCluster = {
    nodes,
    amqpUrl: nodes.map((n) => n.url).join(","),
    ctl,
    async leaderOf(queue) {
      const info = (await queueInfo())[queue];
      const node = nodes.find((n) => n.name === info?.leader);
      if (!node) throw new Error(`no leader listed for ${queue}: ${JSON.stringify(info)}`);
      return node;
    },
    async membersOf(queue) {
      const info = (await queueInfo())[queue];
      if (!info) throw new Error(`${queue} is not listed`);
      return info;
    },
    queueInfo: () => queueInfo(),
    kill: killNode,
    async restart(node) {
      const own = nodes.find((n) => n.name === node.name)!;
      await run(SERVER, ["-detached"], { env: own.env, cwd: base, timeout: 30_000 });
      own.up = true;
      await awaitStartup(own, Date.now() + timeoutMs);
    },
    async stop() {
      for (const node of nodes) await killNode(node);
      // Anything of this cluster still running (a node that died before writing its pid file,
      // a CLI call, its epmd) is found by this run's unique names, and ended by its pid.
      for (const pid of await processesMentioning(prefix, String(epmdPort))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      await rm(base, { recursive: true, force: true, maxRetries: 3 });
    },
  };

  try {
    const deadline = Date.now() + timeoutMs;
    // Every boot settles before a failure is thrown: the clean-up must not pull the folders
    // from under a CLI call still running.
    const boots = await Promise.allSettled(
      nodes.map(async (node) => {
        await run(SERVER, ["-detached"], { env: node.env, cwd: base, timeout: 30_000 });
        node.up = true;
        await awaitStartup(node, deadline);
      }),
    );
    const failed = boots.find((boot) => boot.status === "rejected");
    if (failed) throw failed.reason;
    const [first, ...others] = nodes;
    for (const node of others) {
      await ctl(node, "stop_app");
      await ctl(node, "join_cluster", first.name);
      await ctl(node, "start_app");
      await awaitStartup(node, deadline);
    }
    return cluster;
  } catch (err) {
    const logs = await Promise.all(
      nodes.map(
        async (n) =>
          `${n.name}: ${(await readFile(path.join(n.env.RABBITMQ_LOG_BASE!, `${n.name}.log`), "utf8").catch(() => "(no log)")).slice(-2000)}`,
      ),
    );
    await cluster.stop();
    throw new Error(`the test cluster did not start: ${(err as Error).message}\n${logs.join("\n")}`, { cause: err });
  }

  /** Until the node has booted: it is not even known to epmd for its first seconds. */
  async function awaitStartup(node: RabbitNode, deadline: number): Promise<void> {
    for (;;) {
      try {
        await ctl(node, "await_startup", "--timeout", "10");
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(500);
      }
    }
  }
}

/** Pids of processes whose command line or environment holds this cluster's node-name prefix or epmd port. */
async function processesMentioning(prefix: string, epmdPort: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const environ = await readFile(`/proc/${entry}/environ`, "utf8").catch(() => "");
    if (cmdline.includes(prefix) || environ.split("\0").includes(`ERL_EPMD_PORT=${epmdPort}`)) pids.push(Number(entry));
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
