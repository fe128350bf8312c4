// The dog.ceo client: the only module that talks HTTP to dog.ceo (and the only undici user).
// Every failure becomes a DogApiError whose message a person can read on a task page.
import { STATUS_CODES } from "node:http";
import type { Readable } from "node:stream";
import { Agent, request, type Dispatcher } from "undici";
import { createRateGate } from "../platform/rateGate.ts";
import { shorten } from "../platform/text.ts";

export interface DogApiOptions {
  baseUrl: string; // e.g. https://dog.ceo/api
  connectTimeoutMs?: number; // default 3000
  headersTimeoutMs?: number; // default 5000
  bodyTimeoutMs?: number; // default 5000
  /** Deadline for a whole call, connect to last byte; default connect + headers + body timeouts. */
  totalTimeoutMs?: number;
  /** Largest answer read; a bigger one is abandoned (default 1 MiB). */
  maxBodyBytes?: number;
  /**
   * Most requests this client starts a second, after a first burst of as many (undefined or 0: no
   * ceiling). Its callers share them first come, first served; waiting for a turn is not part of
   * any timeout above.
   */
  maxRps?: number;
}

export type DogApiErrorKind = "not_found" | "transient" | "invalid" | "stopped";

/**
 * not_found and invalid are permanent (dog.ceo refused the request); transient may succeed on a retry; stopped: the
 * caller's signal abandoned the call.
 */
export class DogApiError extends Error {
  readonly kind: DogApiErrorKind;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(
    kind: DogApiErrorKind,
    message: string,
    extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    // dog.ceo's own words can be any size: bounded here, before any log line or task carries them.
    super(shorten(message), extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "DogApiError";
    this.kind = kind;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

export interface DogApi {
  listBreeds(): Promise<Record<string, string[]>>;
  /**
   * `signal` abandons the call (a stopped task): the request is aborted and it throws a
   * "stopped" DogApiError. A `rerun` waits for its turn (DOG_API_MAX_RPS) behind every other call.
   */
  randomImages(
    breed: string,
    subBreed: string | undefined,
    count: number,
    options?: { signal?: AbortSignal; rerun?: boolean },
  ): Promise<string[]>;
  /**
   * Waits for requests in flight (each bounded by totalTimeoutMs), then closes the connections; calls still waiting for
   * their turn fail as transient.
   */
  close(): Promise<void>;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(2))} s`;

function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${Number((n / (1024 * 1024)).toFixed(2))} MiB`;
  if (n >= 1024) return `${Number((n / 1024).toFixed(2))} KiB`;
  return `${n} bytes`;
}

const ignore = () => {};

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((v) => typeof v === "string");

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The client's bounds, resolved from DogApiOptions. */
interface Limits {
  host: string;
  connectTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
  totalTimeout: number;
  maxBodyBytes: number;
}

function limitsOf(opts: DogApiOptions): Limits {
  const connectTimeout = opts.connectTimeoutMs ?? 3000;
  const headersTimeout = opts.headersTimeoutMs ?? 5000;
  const bodyTimeout = opts.bodyTimeoutMs ?? 5000;
  // headersTimeout and bodyTimeout only bound silences: a server sending a byte now and then never trips them.
  const totalTimeout = opts.totalTimeoutMs ?? connectTimeout + headersTimeout + bodyTimeout;
  return {
    host: new URL(opts.baseUrl).host,
    connectTimeout,
    headersTimeout,
    bodyTimeout,
    totalTimeout,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
  };
}

export function createDogApi(opts: DogApiOptions): DogApi {
  const baseUrl = opts.baseUrl.replace(/\/+$/, "");
  const limits = limitsOf(opts);
  const agent = new Agent({
    connect: { timeout: limits.connectTimeout },
    headersTimeout: limits.headersTimeout,
    bodyTimeout: limits.bodyTimeout,
  });
  // One gate per client, so every call spends from the same budget, retries included (a 429's
  // Retry-After still reaches the caller on the DogApiError, to delay that job's retry).
  const gate = opts.maxRps ? createRateGate(opts.maxRps) : undefined;

  /** GETs a dog.ceo path and returns the `message` of a success reply, or throws a DogApiError. */
  async function get(path: string, stop?: AbortSignal, later = false): Promise<unknown> {
    if (stop?.aborted) throw stopped(stop);
    await gate?.turn(later); // a wait for our turn is politeness, not dog.ceo being slow: the deadline starts after it
    if (stop?.aborted) throw stopped(stop);
    return messageOf(await fetchAnswer(`${baseUrl}${path}`, agent, limits, stop));
  }

  return {
    async listBreeds() {
      const message = await get("/breeds/list/all");
      if (!isRecord(message) || !Object.values(message).every(isStringArray)) {
        throw new DogApiError("transient", "dog.ceo sent an unexpected breed list (not a map of breed to sub-breeds)");
      }
      return Object.fromEntries(
        Object.entries(message as Record<string, string[]>).map(([breed, subs]) => [breed, [...subs]]),
      );
    },

    async randomImages(breed, subBreed, count, options = {}) {
      if (!Number.isInteger(count) || count < 1)
        throw new DogApiError("invalid", `the number of photos must be a whole number of at least 1 (got ${count})`);
      const segments = subBreed ? [breed, subBreed] : [breed];
      const message = await get(
        `/breed/${segments.map(encodeURIComponent).join("/")}/images/random/${count}`,
        options.signal,
        options.rerun,
      );
      if (!isStringArray(message))
        throw new DogApiError("transient", "dog.ceo sent an unexpected reply (not a list of image links)");
      return message;
    },

    close() {
      gate?.close(new DogApiError("transient", "the dog.ceo client closed before this call's turn came"));
      return agent.close();
    },
  };
}

const stopped = (stop?: AbortSignal) =>
  new DogApiError("stopped", "the call to dog.ceo was abandoned: the task was stopped", { cause: stop?.reason });

/** What dog.ceo answered: its status and headers, and its body unless it was an error page not worth reading. */
type Answer = { statusCode: number; headers: Dispatcher.ResponseData["headers"]; text?: string };

/** One GET within the total deadline (or until `stop`); a failure to get an answer becomes a DogApiError. */
async function fetchAnswer(url: string, agent: Agent, limits: Limits, stop?: AbortSignal): Promise<Answer> {
  const deadline = AbortSignal.timeout(limits.totalTimeout);
  const signal = stop ? AbortSignal.any([deadline, stop]) : deadline;
  let res: Dispatcher.ResponseData | undefined;
  try {
    res = await request(url, {
      method: "GET",
      dispatcher: agent,
      signal, // aborting mid-answer destroys the socket
      headers: { accept: "application/json", "user-agent": "GenDog/0.1" },
    });
    res.body.on("error", ignore); // failures surface through dump() or readText(), never as an unhandled event
    const { statusCode, headers } = res;
    // Error pages from a CDN can be large and say nothing useful: drop them, keep the socket reusable.
    if (statusCode >= 500 || statusCode === 429 || statusCode === 403 || statusCode === 408) {
      await res.body.dump();
      return { statusCode, headers };
    }
    return { statusCode, headers, text: await readText(res.body, headers["content-length"], limits.maxBodyBytes) };
  } catch (err) {
    res?.body.destroy(); // a no-op once the body has ended; otherwise it frees the socket
    if (err instanceof DogApiError) throw err;
    if (stop?.aborted) throw stopped(stop);
    if (deadline.aborted) {
      throw new DogApiError(
        "transient",
        `dog.ceo did not finish answering within ${seconds(limits.totalTimeout)} (total timeout)`,
        { cause: err },
      );
    }
    throw networkError(err, limits);
  }
}

/** The `message` of a success reply; any other answer becomes a DogApiError saying what came back. */
function messageOf({ statusCode, headers, text }: Answer): unknown {
  const statusLine = `${statusCode} ${STATUS_CODES[statusCode] ?? ""}`.trim();
  const retryAfterMs = parseRetryAfter(headers["retry-after"]);
  if (text === undefined || statusCode < 200 || (statusCode >= 300 && statusCode < 400)) {
    throw new DogApiError("transient", `dog.ceo answered ${statusLine}`, {
      status: statusCode,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const type = String(headers["content-type"] ?? "unknown").split(";")[0];
    throw new DogApiError("transient", `dog.ceo sent a reply that is not JSON (${statusLine}, ${type})`, {
      status: statusCode,
    });
  }

  if (statusCode >= 400) {
    const said =
      isRecord(json) && json.status === "error" && typeof json.message === "string" ? json.message : undefined;
    if (statusCode === 404 && said) throw new DogApiError("not_found", said, { status: statusCode });
    throw new DogApiError("invalid", said ?? `dog.ceo answered ${statusLine}`, { status: statusCode });
  }
  if (!isRecord(json) || json.status !== "success" || !("message" in json)) {
    throw new DogApiError("transient", 'dog.ceo sent an unexpected reply (no "success" status)', {
      status: statusCode,
    });
  }
  return json.message;
}

/** Reads a body of at most maxBodyBytes; a bigger one is destroyed, which also closes its socket. */
async function readText(
  body: Readable,
  contentLength: string | string[] | undefined,
  maxBodyBytes: number,
): Promise<string> {
  const tooLarge = () => new DogApiError("transient", `dog.ceo's answer is larger than ${bytes(maxBodyBytes)}`);
  if (Number(contentLength) > maxBodyBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw tooLarge(); // leaving the loop destroys the body
    chunks.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** A failure to reach dog.ceo or to read its answer, in words a person can act on. */
function networkError(err: unknown, { host, connectTimeout, headersTimeout, bodyTimeout }: Limits): DogApiError {
  const code = (err as { code?: unknown } | null)?.code;
  const text = (() => {
    switch (code) {
      case "UND_ERR_CONNECT_TIMEOUT":
        return `could not connect to dog.ceo at ${host} within ${seconds(connectTimeout)} (connect timeout)`;
      case "UND_ERR_HEADERS_TIMEOUT":
        return `dog.ceo did not answer within ${seconds(headersTimeout)} (headers timeout)`;
      case "UND_ERR_BODY_TIMEOUT":
        return `dog.ceo stopped sending its answer for ${seconds(bodyTimeout)} (body timeout)`;
      case "UND_ERR_SOCKET":
      case "UND_ERR_RES_CONTENT_LENGTH_MISMATCH":
      case "ECONNRESET":
      case "EPIPE":
        return "dog.ceo closed the connection before its answer was complete";
      case "ECONNREFUSED":
      case "ENOTFOUND":
      case "EAI_AGAIN":
      case "EHOSTUNREACH":
      case "ENETUNREACH":
      case "ETIMEDOUT":
        return `could not connect to dog.ceo at ${host}: ${code}`;
      default:
        return `request to dog.ceo failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  })();
  return new DogApiError("transient", text, { cause: err });
}

/**
 * The client web and worker use: DOG_API_URL, DOG_API_TIMEOUT_MS (connecting within at most 3 s of it) and
 * DOG_API_MAX_RPS.
 */
export function dogApiFromConfig(config: { dogApiUrl: string; dogApiTimeoutMs: number; dogApiMaxRps: number }): DogApi {
  const timeoutMs = config.dogApiTimeoutMs;
  return createDogApi({
    baseUrl: config.dogApiUrl,
    connectTimeoutMs: Math.min(timeoutMs, 3000),
    headersTimeoutMs: timeoutMs,
    bodyTimeoutMs: timeoutMs,
    maxRps: config.dogApiMaxRps,
  });
}
