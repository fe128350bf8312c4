// The dog.ceo client: the only module that talks HTTP to dog.ceo (and the only undici user).
// Every failure becomes a DogApiError whose message a person can read on a task page.
import { STATUS_CODES } from 'node:http';
import { Agent, request } from 'undici';

export interface DogApiOptions {
  baseUrl: string; // e.g. https://dog.ceo/api
  connectTimeoutMs?: number; // default 3000
  headersTimeoutMs?: number; // default 5000
  bodyTimeoutMs?: number; // default 5000
  imageHosts?: string[]; // accepted for the caller's convenience; this client does not filter links
}

export type DogApiErrorKind = 'not_found' | 'transient' | 'invalid';

/** not_found and invalid are permanent (dog.ceo refused the request); transient may succeed on a retry. */
export class DogApiError extends Error {
  readonly kind: DogApiErrorKind;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(kind: DogApiErrorKind, message: string, extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'DogApiError';
    this.kind = kind;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

export interface DogApi {
  listBreeds(): Promise<Record<string, string[]>>;
  randomImages(breed: string, subBreed: string | undefined, count: number): Promise<string[]>;
  /** Waits for requests in flight (bounded by the timeouts), then closes the connections. */
  close(): Promise<void>;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(2))} s`;

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

export function createDogApi(opts: DogApiOptions): DogApi {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const host = new URL(baseUrl).host;
  const connectTimeout = opts.connectTimeoutMs ?? 3000;
  const headersTimeout = opts.headersTimeoutMs ?? 5000;
  const bodyTimeout = opts.bodyTimeoutMs ?? 5000;
  const agent = new Agent({ connect: { timeout: connectTimeout }, headersTimeout, bodyTimeout });

  function networkError(err: unknown): DogApiError {
    const code = (err as { code?: unknown } | null)?.code;
    const text = (() => {
      switch (code) {
        case 'UND_ERR_CONNECT_TIMEOUT':
          return `could not connect to dog.ceo at ${host} within ${seconds(connectTimeout)} (connect timeout)`;
        case 'UND_ERR_HEADERS_TIMEOUT':
          return `dog.ceo did not answer within ${seconds(headersTimeout)} (headers timeout)`;
        case 'UND_ERR_BODY_TIMEOUT':
          return `dog.ceo stopped sending its answer for ${seconds(bodyTimeout)} (body timeout)`;
        case 'UND_ERR_SOCKET':
        case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
        case 'ECONNRESET':
        case 'EPIPE':
          return 'dog.ceo closed the connection before its answer was complete';
        case 'ECONNREFUSED':
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
        case 'EHOSTUNREACH':
        case 'ENETUNREACH':
        case 'ETIMEDOUT':
          return `could not connect to dog.ceo at ${host}: ${code}`;
        default:
          return `request to dog.ceo failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    })();
    return new DogApiError('transient', text, { cause: err });
  }

  /** GETs a dog.ceo path and returns the `message` of a success reply, or throws a DogApiError. */
  async function get(path: string): Promise<unknown> {
    let statusCode: number;
    let headers: Record<string, string | string[] | undefined>;
    let text: string | undefined;
    try {
      const res = await request(`${baseUrl}${path}`, {
        method: 'GET',
        dispatcher: agent,
        headers: { accept: 'application/json', 'user-agent': 'GenDog/0.1' },
      });
      statusCode = res.statusCode;
      headers = res.headers;
      // Error pages from a CDN can be large and say nothing useful: drop them, keep the socket reusable.
      if (statusCode >= 500 || statusCode === 429 || statusCode === 403 || statusCode === 408) await res.body.dump();
      else text = await res.body.text();
    } catch (err) {
      throw networkError(err);
    }

    const statusLine = `${statusCode} ${STATUS_CODES[statusCode] ?? ''}`.trim();
    const retryAfterMs = parseRetryAfter(headers['retry-after']);
    if (text === undefined || statusCode < 200 || (statusCode >= 300 && statusCode < 400)) {
      throw new DogApiError('transient', `dog.ceo answered ${statusLine}`, { status: statusCode, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
    }

    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      const type = String(headers['content-type'] ?? 'unknown').split(';')[0];
      throw new DogApiError('transient', `dog.ceo sent a reply that is not JSON (${statusLine}, ${type})`, { status: statusCode });
    }

    if (statusCode >= 400) {
      const said = isRecord(json) && json.status === 'error' && typeof json.message === 'string' ? json.message : undefined;
      if (statusCode === 404 && said) throw new DogApiError('not_found', said, { status: statusCode });
      throw new DogApiError('invalid', said ?? `dog.ceo answered ${statusLine}`, { status: statusCode });
    }
    if (!isRecord(json) || json.status !== 'success' || !('message' in json)) {
      throw new DogApiError('transient', 'dog.ceo sent an unexpected reply (no "success" status)', { status: statusCode });
    }
    return json.message;
  }

  return {
    async listBreeds() {
      const message = await get('/breeds/list/all');
      if (!isRecord(message) || !Object.values(message).every(isStringArray)) {
        throw new DogApiError('transient', 'dog.ceo sent an unexpected breed list (not a map of breed to sub-breeds)');
      }
      return Object.fromEntries(Object.entries(message as Record<string, string[]>).map(([breed, subs]) => [breed, [...subs]]));
    },

    async randomImages(breed, subBreed, count) {
      if (!Number.isInteger(count) || count < 1) throw new DogApiError('invalid', `the number of photos must be a whole number of at least 1 (got ${count})`);
      const segments = subBreed ? [breed, subBreed] : [breed];
      const message = await get(`/breed/${segments.map(encodeURIComponent).join('/')}/images/random/${count}`);
      if (!isStringArray(message)) throw new DogApiError('transient', 'dog.ceo sent an unexpected reply (not a list of image links)');
      return message;
    },

    close: () => agent.close(),
  };
}
