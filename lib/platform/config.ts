// Every environment variable GenDog reads, parsed and validated in one place at start.
// A bad value stops the process with one line that names the variable.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import path from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The folder holding package.json, views/ and static/: found upward from this file, which runs from lib/platform/ under
 * tsx and from dist/ once bundled.
 */
export const projectRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

export interface Config {
  env: "development" | "production" | "test";
  host: string;
  port: number;
  databaseUrl: string;
  /** RabbitMQ: one node's URL, or a cluster's nodes comma-separated (amqpNodeUrls splits them). */
  amqpUrl: string;
  /** The work queue; QUEUE_NAME, or QUEUE_NAME.quorum for quorum queues (a queue cannot change type in place). */
  queueName: string;
  queueType: "classic" | "quorum";
  dogApiUrl: string;
  dogApiTimeoutMs: number;
  /**
   * Most dog.ceo requests one process starts a second (0: no ceiling); its jobs take turns, first come, first served.
   */
  dogApiMaxRps: number;
  /** Origins whose https (or, for the stand-in, http) links are stored as photos. */
  imageOrigins: string[];
  workerConcurrency: number;
  /** How overdue a retry, or how long a worker silent, before the recovery sweep sends its task again. */
  recoveryGraceMs: number;
  retry: { maxAttempts: number; baseMs: number; maxMs: number };
  rateLimitPerMinute: number;
  publishWaitMs: number;
  /**
   * How long the database may keep a submit's write, or /readyz's check, waiting before the
   * answer is 503 with Retry-After; on PostgreSQL also each connect and each query of the job
   * pipeline's store, so a silent database fails a job's step instead of holding it.
   */
  databaseTimeoutMs: number;
  shutdownTimeoutMs: number;
  logLevel: string;
  /** "pretty" for people at a terminal (needs the pino-pretty dev dependency), "json" for machines. */
  logFormat: "json" | "pretty";
  /** Signs CSRF tokens; random per process unless set (then forms survive restarts). */
  csrfSecret: string;
  /** Cookies only over HTTPS: on by default in production, off where the app is served over plain http. */
  secureCookies: boolean;
  /** How long the web waits for a client's headers, a whole request, and a next request on an idle connection. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  /** Sent outbox rows and the attempts of tasks finished longer ago than this are deleted (tasks and photos stay). */
  retentionDays: number;
  /** A worker serves its Prometheus metrics on this port (0: it does not); the web serves them at /metrics. */
  metricsPort: number;
  /**
   * When set, actions that change or delete (clear, cancel, retry, requeue, purge, pause) ask for it; reading stays
   * open.
   */
  adminPassword?: string;
  /**
   * Signs pause and resume for the workers; unset: a key derived from ADMIN_PASSWORD signs them (neither: pausing is
   * off).
   */
  controlSecret?: string;
  /**
   * Proxies whose X-Forwarded-For names the client (Express's "trust proxy"); empty: none, the connection's peer is the
   * client.
   */
  trustProxy: string[];
  /** OpenTelemetry's OTLP/HTTP collector; tracing is off without it. */
  otelEndpoint?: string;
  /** The service name traces carry; gendog-web or gendog-worker when unset. */
  otelServiceName?: string;
  /**
   * Live event streams (/events): at most this many open, and per client address; each ends after maxAgeMs (the browser
   * reconnects).
   */
  streams: { max: number; perClient: number; maxAgeMs: number };
}

/** Jobs one worker runs at once at most (also what a heartbeat may claim: lib/monitor/workerRegistry.ts). */
export const MAX_WORKER_CONCURRENCY = 1024;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, "NODE_ENV", ["development", "production", "test"], "development");
  const dogApiUrl = httpUrl(env, "DOG_API_URL", "https://dog.ceo/api").replace(/\/+$/, "");
  const retry = {
    maxAttempts: integer(env, "RETRY_MAX_ATTEMPTS", 5, 1, 20),
    baseMs: integer(env, "RETRY_BASE_MS", 1000, 1, 3_600_000),
    maxMs: integer(env, "RETRY_MAX_MS", 60_000, 1, 86_400_000),
  };
  if (retry.maxMs < retry.baseMs)
    throw new ConfigError("RETRY_MAX_MS", `must not be below RETRY_BASE_MS (${retry.baseMs})`);
  const requestTimeoutMs = integer(env, "HTTP_REQUEST_TIMEOUT_MS", 30_000, 100, 600_000);
  const headersTimeoutMs = integer(env, "HTTP_HEADERS_TIMEOUT_MS", Math.min(10_000, requestTimeoutMs), 100, 600_000);
  // Node refuses a headers timeout longer than the whole request's.
  if (headersTimeoutMs > requestTimeoutMs)
    throw new ConfigError("HTTP_HEADERS_TIMEOUT_MS", `must not be above HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs})`);
  return {
    env: nodeEnv as Config["env"],
    host: text(env, "HOST", "127.0.0.1"),
    port: integer(env, "PORT", 3000, 0, 65535),
    databaseUrl: databaseUrl(env),
    amqpUrl: amqpUrl(env),
    queueName:
      queueName(env) + (oneOf(env, "QUEUE_TYPE", ["classic", "quorum"], "classic") === "quorum" ? ".quorum" : ""),
    queueType: oneOf(env, "QUEUE_TYPE", ["classic", "quorum"], "classic") as Config["queueType"],
    dogApiUrl,
    dogApiTimeoutMs: integer(env, "DOG_API_TIMEOUT_MS", 10_000, 50, 120_000),
    // dog.ceo is free and public: 128 jobs at once must not turn into hundreds of requests a second.
    dogApiMaxRps: integer(env, "DOG_API_MAX_RPS", 20, 0, 10_000),
    imageOrigins: imageOrigins(env, dogApiUrl),
    // Jobs mostly wait on dog.ceo: at 100 ms a call, 128 in flight keep one worker near 1,000 jobs/s.
    workerConcurrency: integer(env, "WORKER_CONCURRENCY", 128, 1, MAX_WORKER_CONCURRENCY),
    recoveryGraceMs: integer(env, "RECOVERY_GRACE_MS", 30_000, 200, 3_600_000),
    retry,
    rateLimitPerMinute: integer(env, "RATE_LIMIT_PER_MINUTE", 30, 0, 100_000),
    publishWaitMs: integer(env, "PUBLISH_WAIT_MS", 2000, 0, 60_000),
    databaseTimeoutMs: integer(env, "DATABASE_TIMEOUT_MS", 5000, 100, 120_000),
    shutdownTimeoutMs: integer(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 100, 600_000),
    logLevel: oneOf(env, "LOG_LEVEL", LOG_LEVELS, nodeEnv === "test" ? "warn" : "info"),
    logFormat: oneOf(env, "LOG_FORMAT", ["json", "pretty"], "json") as Config["logFormat"],
    csrfSecret: csrfSecret(env),
    secureCookies:
      oneOf(env, "SECURE_COOKIES", ["true", "false"], nodeEnv === "production" ? "true" : "false") === "true",
    retentionDays: integer(env, "RETENTION_DAYS", 30, 1, 3650),
    metricsPort: integer(env, "METRICS_PORT", 0, 0, 65535),
    ...adminPassword(env),
    ...controlSecret(env),
    trustProxy: trustProxy(env),
    ...otelEndpoint(env),
    http: {
      headersTimeoutMs,
      requestTimeoutMs,
      keepAliveTimeoutMs: integer(env, "HTTP_KEEPALIVE_TIMEOUT_MS", 5_000, 100, 600_000),
    },
    streams: {
      max: integer(env, "EVENT_STREAMS_MAX", 1000, 1, 100_000),
      perClient: integer(env, "EVENT_STREAMS_PER_CLIENT", 10, 1, 10_000),
      maxAgeMs: integer(env, "EVENT_STREAM_MAX_AGE_MS", 600_000, 1000, 86_400_000),
    },
  };
}

/**
 * file: is SQLite (the embedded default); postgres:// or postgresql:// is PostgreSQL, for
 * web and workers on several machines. Also used by prisma.config.ts, so the CLI and the
 * app always open the same database.
 */
export function databaseUrl(env: Env = process.env): string {
  const raw = env.DATABASE_URL?.trim() || `file:${path.join(projectRoot, "gendog.db")}`;
  if (isPostgresUrl(raw)) {
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    if (!url?.hostname || url.pathname.length < 2)
      throw new ConfigError(
        "DATABASE_URL",
        `must name a host and a database, like postgresql://user:password@host:5432/gendog, got '${url ? maskUrl(raw) : "(unparseable URL)"}'`,
      );
    return raw;
  }
  if (!raw.startsWith("file:")) {
    throw new ConfigError(
      "DATABASE_URL",
      `must be a SQLite file URL like file:./gendog.db or a PostgreSQL URL like postgresql://user:password@host:5432/gendog, got '${URL.canParse(raw) ? maskUrl(raw) : raw}'`,
    );
  }
  const file = raw.slice("file:".length);
  if (!file) throw new ConfigError("DATABASE_URL", "names no file");
  return `file:${path.resolve(projectRoot, file)}`;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

export function databaseFile(url: string): string {
  return url.slice("file:".length);
}

function adminPassword(env: Env): { adminPassword?: string } {
  const raw = env.ADMIN_PASSWORD;
  if (raw === undefined || raw === "") return {};
  if (raw.length < 12)
    throw new ConfigError(
      "ADMIN_PASSWORD",
      "must be at least 12 characters long (or unset, to leave the actions open)",
    );
  return { adminPassword: raw };
}

function controlSecret(env: Env): { controlSecret?: string } {
  const raw = env.CONTROL_SECRET?.trim();
  if (!raw) return {};
  if (raw.length < 32)
    throw new ConfigError(
      "CONTROL_SECRET",
      "must be at least 32 characters long (or unset, to derive the key from ADMIN_PASSWORD)",
    );
  return { controlSecret: raw };
}

/**
 * Addresses, subnets (address/prefix) or Express's names for ranges; "true" or a hop count would trust whoever
 * connects.
 */
function trustProxy(env: Env): string[] {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw) return [];
  return raw.split(",").map((entry) => {
    const item = entry.trim();
    const [address = "", prefix, extra] = item.split("/");
    const family = isIP(address);
    const validPrefix =
      prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (["loopback", "linklocal", "uniquelocal"].includes(item) || (family !== 0 && validPrefix && extra === undefined))
      return item;
    throw new ConfigError(
      "TRUST_PROXY",
      `must list proxy addresses, subnets (10.0.0.0/8) or loopback, linklocal, uniquelocal, separated by commas; got '${item}'`,
    );
  });
}

function otelEndpoint(env: Env): { otelEndpoint?: string; otelServiceName?: string } {
  const raw = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const name = env.OTEL_SERVICE_NAME?.trim();
  if (name && !/^[\w.-]{1,100}$/.test(name))
    throw new ConfigError("OTEL_SERVICE_NAME", "may hold only letters, digits and . _ - (1 to 100 characters)");
  return {
    ...(raw ? { otelEndpoint: httpUrl(env, "OTEL_EXPORTER_OTLP_ENDPOINT", raw) } : {}),
    ...(name ? { otelServiceName: name } : {}),
  };
}

function csrfSecret(env: Env): string {
  const raw = env.CSRF_SECRET?.trim();
  if (!raw) return randomBytes(32).toString("hex");
  if (raw.length < 32) throw new ConfigError("CSRF_SECRET", "must be at least 32 characters long");
  return raw;
}

function amqpUrl(env: Env): string {
  return amqpNodeUrls(text(env, "AMQP_URL", "amqp://guest:guest@localhost:5672")).join(",");
}

/**
 * AMQP_URL's nodes: one URL, or several comma-separated (the nodes of one RabbitMQ cluster,
 * tried in turn as Celery's failover list is; a comma inside a password is written %2C).
 * A bad entry stops the process, named by its place in the list, its password hidden.
 */
export function amqpNodeUrls(raw: string): string[] {
  const entries = raw.split(",").map((s) => s.trim());
  const urls: string[] = [];
  entries.forEach((entry, i) => {
    const which = entries.length > 1 ? `entry ${i + 1} of ${entries.length} ` : "";
    if (!entry)
      throw new ConfigError(
        "AMQP_URL",
        `${which}is empty (list the nodes as amqp://user:password@host1:5672,amqp://user:password@host2:5672)`,
      );
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ConfigError(
        "AMQP_URL",
        `${which}'${maskUrlText(entry)}' is not a URL (expected amqp://user:password@host:5672)`,
      );
    }
    if (url.protocol !== "amqp:" && url.protocol !== "amqps:")
      throw new ConfigError(
        "AMQP_URL",
        `${which}'${maskUrl(entry)}' must start with amqp:// or amqps://, got ${url.protocol}//`,
      );
    if (!url.hostname) throw new ConfigError("AMQP_URL", `${which}'${maskUrl(entry)}' names no host`);
    const same = urls.findIndex((other) => sameNode(new URL(other), url));
    if (same >= 0)
      throw new ConfigError("AMQP_URL", `${which}'${maskUrl(entry)}' names the same node as entry ${same + 1}`);
    urls.push(entry);
  });
  return urls;
}

function sameNode(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.hostname === b.hostname && a.port === b.port;
}

function queueName(env: Env): string {
  const name = text(env, "QUEUE_NAME", "gendog.jobs");
  if (!/^[A-Za-z0-9._:-]{1,200}$/.test(name))
    throw new ConfigError("QUEUE_NAME", "may hold only letters, digits and . _ : - (1 to 200 characters)");
  return name;
}

function imageOrigins(env: Env, dogApiUrl: string): string[] {
  const listed = (env.IMAGE_ORIGINS ?? "https://images.dog.ceo")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const origin of listed) {
    if (!/^https:\/\/[^/]+$/.test(origin))
      throw new ConfigError("IMAGE_ORIGINS", `must list https origins without a path, got '${origin}'`);
  }
  // The configured dog API's own origin (the stand-in serves its images there).
  return [...new Set([...listed, new URL(dogApiUrl).origin])];
}

function httpUrl(env: Env, name: string, fallback: string): string {
  const raw = text(env, name, fallback);
  try {
    const url = new URL(raw);
    if (url.protocol === "http:" || url.protocol === "https:") return raw;
  } catch {
    // reported below
  }
  throw new ConfigError(name, `must be an http(s) URL, got '${URL.canParse(raw) ? maskUrl(raw) : raw}'`);
}

function text(env: Env, name: string, fallback: string): string {
  const raw = env[name]?.trim();
  return raw ? raw : fallback;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  return Number(raw);
}

function oneOf(env: Env, name: string, allowed: string[], fallback: string): string {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!allowed.includes(raw)) throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got '${raw}'`);
  return raw;
}

/** The broker address with its password hidden, for logs and pages. */
export function maskUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = "***";
    return url.toString().replace(/\/$/, "");
  } catch {
    return "(unparseable URL)";
  }
}

/** Text that failed to parse as a URL, with whatever stands between "//user:" and "@" hidden. */
function maskUrlText(raw: string): string {
  return raw.replace(/^([^/]*\/\/[^:@/]*:)[^@]*@/, "$1***@");
}
