// Fault injection for the reliability tests: a TCP proxy that can cut the app off from
// RabbitMQ (the machine's broker itself is never touched), and the web and worker as
// real child processes that can be killed or sent signals.
import { prng } from "../../dev/fake-dog-api.ts";
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import type { Config } from "../../lib/platform/config.ts";
import { projectRoot } from "../../lib/platform/config.ts";

export interface TcpProxy {
  port: number;
  /** Connections accepted (and forwarded) so far. */
  readonly connections: number;
  /**
   * Drops every open connection, then turns new ones away: by default they are accepted and
   * reset at once; with `refuse` the listening socket is closed (connection refused).
   */
  cut(opts?: { refuse?: boolean }): Promise<void>;
  restore(): Promise<void>;
  /** Stops forwarding bytes both ways while keeping every connection open (a stalled link); new ones wait too. */
  stall(): void;
  /** Forwards again, what was held included. */
  resume(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to targetHost:targetPort. */
export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let isCut = false;
  let stalled = false;
  const forward = ([client, upstream]: [net.Socket, net.Socket]) => {
    client.pipe(upstream);
    upstream.pipe(client);
  };
  let connections = 0;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  };

  const server = net.createServer((client) => {
    if (isCut) return void client.destroy();
    connections += 1;
    track(client);
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    if (!stalled) forward(pair);
    client.on("close", () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.on("close", () => client.destroy());
  });
  server.on("error", () => {});

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));

  const port = await listen(0);
  return {
    port,
    get connections() {
      return connections;
    },
    async cut(opts = {}) {
      isCut = true;
      for (const socket of sockets) socket.destroy();
      if (opts.refuse) await stopListening();
    },
    stall() {
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      if (!stalled) return; // piping a pair twice would send every byte twice
      stalled = false;
      for (const pair of pairs) forward(pair);
    },
    async restore() {
      isCut = false;
      if (!server.listening) await listen(port);
    },
    async close() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
      await stopListening();
    },
  };
}

/** A port nobody listens on right now (a listener opened and closed again). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The environment variables that make a child process load this config (loadConfig's inverse). */
export function configEnv(config: Config, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: config.env,
    HOST: config.host,
    PORT: String(config.port),
    DATABASE_URL: config.databaseUrl,
    AMQP_URL: config.amqpUrl,
    QUEUE_NAME: config.queueType === "quorum" ? config.queueName.replace(/\.quorum$/, "") : config.queueName,
    QUEUE_TYPE: config.queueType,
    DOG_API_URL: config.dogApiUrl,
    DOG_API_TIMEOUT_MS: String(config.dogApiTimeoutMs),
    DOG_API_MAX_RPS: String(config.dogApiMaxRps),
    WORKER_CONCURRENCY: String(config.workerConcurrency),
    RETRY_MAX_ATTEMPTS: String(config.retry.maxAttempts),
    RETRY_BASE_MS: String(config.retry.baseMs),
    RETRY_MAX_MS: String(config.retry.maxMs),
    RATE_LIMIT_PER_MINUTE: String(config.rateLimitPerMinute),
    PUBLISH_WAIT_MS: String(config.publishWaitMs),
    DATABASE_TIMEOUT_MS: String(config.databaseTimeoutMs),
    SHUTDOWN_TIMEOUT_MS: String(config.shutdownTimeoutMs),
    RECOVERY_GRACE_MS: String(config.recoveryGraceMs),
    LOG_LEVEL: "info",
    CSRF_SECRET: config.csrfSecret,
    // The control key: a web and workers must derive the same one, or heartbeats are dropped.
    ...(config.adminPassword === undefined ? {} : { ADMIN_PASSWORD: config.adminPassword }),
    ...(config.controlSecret === undefined ? {} : { CONTROL_SECRET: config.controlSecret }),
    ...overrides,
  };
}

export interface ChildApp {
  child: ChildProcess;
  pid: number;
  /** Everything written to stdout and stderr so far, interleaved. */
  output(): string;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the output once it matches, or throws (with the output) after timeoutMs. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGKILLs the child if it is still running and waits for it to go. */
  stop(): Promise<void>;
}

function spawnEntry(entry: string, env: Record<string, string>): ChildApp {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The test runner's own markers must not make the child think it is a test file.
  delete childEnv.NODE_TEST_CONTEXT;
  // Compiled files (dist/*.js) run on plain node, sources through tsx.
  const args = entry.endsWith(".js") ? [entry] : ["--import", "tsx", entry];
  const child = spawn(process.execPath, args, { cwd: projectRoot, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  let all = "";
  let err = "";
  // TEST_CHILD_OUTPUT=1 echoes the children's logs, for debugging a failing run.
  const echo = process.env.TEST_CHILD_OUTPUT
    ? (chunk: string) => process.stderr.write(chunk.replace(/^(?=.)/gm, `[${entry} ${child.pid}] `))
    : () => {};
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    all += chunk;
    echo(chunk);
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    all += chunk;
    err += chunk;
    echo(chunk);
  });
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${entry}`);
  return {
    child,
    pid: child.pid,
    output: () => all,
    stderr: () => err,
    kill: (signal: NodeJS.Signals = "SIGTERM") => {
      if (!exitInfo) child.kill(signal);
    },
    exited,
    async waitForOutput(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(all)) {
        if (exitInfo)
          throw new Error(`${entry} exited (${JSON.stringify(exitInfo)}) before printing ${pattern}:\n${all}`);
        if (Date.now() > deadline)
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${entry} to print ${pattern}:\n${all}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return all;
    },
    async stop() {
      if (!exitInfo) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** `node --import tsx tasks/worker.ts` with these variables on top of this process's environment. */
/** `node dist/<name>.js`, what `npm start` runs; build it first (scripts/build.ts). */
export function spawnBuilt(name: "web" | "worker", env: Record<string, string>): ChildApp {
  return spawnEntry(`dist/${name}.js`, env);
}

export function spawnWorker(env: Record<string, string>): ChildApp {
  return spawnEntry("tasks/worker.ts", env);
}

/** `node --import tsx web.ts`; give it a fixed PORT (see freePort), since PORT=0 is not reported back. */
export function spawnWeb(env: Record<string, string>): ChildApp & { url: string } {
  const port = env.PORT;
  if (!port || port === "0") throw new Error("spawnWeb needs a fixed PORT");
  return Object.assign(spawnEntry("web.ts", env), { url: `http://127.0.0.1:${port}` });
}

/**
 * Which faults the stand-in served for its first `requests` image-list requests after
 * setFaultRate(rates, seed) (with nothing queued by failNext): it rolls once per request.
 */
export function injectedFaults<K extends string>(
  rates: Partial<Record<K, number>>,
  seed: number,
  requests: number,
): Record<K, number> {
  const roll = prng(seed);
  const counts = Object.fromEntries(Object.keys(rates).map((kind) => [kind, 0])) as Record<K, number>;
  for (let i = 0; i < requests; i++) {
    let r = roll();
    for (const [kind, p] of Object.entries(rates) as [K, number][]) {
      if (r < p) {
        counts[kind] += 1;
        break;
      }
      r -= p;
    }
  }
  return counts;
}
