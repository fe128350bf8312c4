// A loopback stand-in for dog.ceo, for development and tests only: production code never imports it.
// It serves the same paths and error texts as dog.ceo (https://dog.ceo/dog-api/documentation), generated SVG
// "photos", and can inject faults into the breed image-list endpoints on demand.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { pathToFileURL } from "node:url";
import breedsSnapshot from "../lib/dogs/breeds-snapshot.json" with { type: "json" };

export type FaultKind =
  "http500" | "http503" | "http429" | "hang" | "badJson" | "truncated" | "slow" | "drip" | "huge" | "longError";
export type RandomFaultKind = "http500" | "hang" | "badJson" | "truncated" | "slow";

/** Injected faults, consumed in order, one per request to a breed image-list endpoint. */
export interface FaultPlan {
  /** Faults queued by failNext(); the head is served first. */
  queue: { kind: FaultKind; delayMs: number }[];
  /** Probabilities used when the queue is empty (set by setFaultRate()). */
  rates: Partial<Record<RandomFaultKind, number>>;
}

export interface FakeDogApi {
  /** Base API url, e.g. http://127.0.0.1:PORT/api */
  url: string;
  /** http://127.0.0.1:PORT, also the host of the image links */
  origin: string;
  /** Number of /breed/... image-list requests received, faulted ones included. */
  readonly requests: number;
  /**
   * Every /api/... request as it arrived (path, Date.now()), oldest first: shows how a client spaces its calls. Keeps
   * the latest 10,000 or more.
   */
  readonly arrivals: readonly { path: string; at: number }[];
  /** Connections open right now (idle keep-alive ones included): shows whether a client let go of a socket. */
  readonly openSockets: number;
  failNext(kind: FaultKind, times?: number, opts?: { delayMs?: number }): void;
  setFaultRate(rates: Partial<Record<RandomFaultKind, number>>, seed?: number): void;
  clearFaults(): void;
  /** Stops listening and destroys every open socket (hanging ones included). */
  close(): Promise<void>;
}

const BREEDS: Record<string, string[]> = breedsSnapshot;
const MAX_COUNT = 50;
const DEFAULT_POOL_SIZE = 60;
const SMALL_POOLS: Record<string, number> = { kelpie: 8, kombai: 12 };
const SLOW_DEFAULT_MS = 300;
const DRIP_DEFAULT_MS = 200;
const HUGE_BYTES = 2 * 1024 * 1024;
const HUGE_CHUNK_BYTES = 64 * 1024;
const MAX_ARRIVALS = 20_000;

// ---------- deterministic helpers ----------

function hash(text: string): number {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** mulberry32: a small seeded PRNG, so fault runs repeat exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0; // mulberry32
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sample<T>(items: readonly T[], count: number): T[] {
  const copy = [...items];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, count);
}

// ---------- the image pools: folder ("hound-afghan") -> file names ----------

function buildPool(folder: string, size: number): string[] {
  const random = prng(hash(folder));
  const prefix = `n02${String(hash(folder) % 1_000_000).padStart(6, "0")}`;
  const numbers = new Set<number>();
  while (numbers.size < size) numbers.add(1000 + Math.floor(random() * 9000));
  return [...numbers].sort((a, b) => a - b).map((n) => `${prefix}_${n}.svg`);
}

const POOLS = new Map<string, string[]>();
for (const [breed, subs] of Object.entries(BREEDS)) {
  if (subs.length === 0) POOLS.set(breed, buildPool(breed, SMALL_POOLS[breed] ?? DEFAULT_POOL_SIZE));
  for (const sub of subs)
    POOLS.set(`${breed}-${sub}`, buildPool(`${breed}-${sub}`, SMALL_POOLS[`${breed}-${sub}`] ?? DEFAULT_POOL_SIZE));
}

/** Image paths ("hound-afghan/n02..._1234.svg") of a breed (its sub-breeds included) or one sub-breed. */
function imagesOf(breed: string, sub: string | undefined): string[] {
  const folders = sub
    ? [`${breed}-${sub}`]
    : BREEDS[breed]!.length
      ? BREEDS[breed]!.map((s) => `${breed}-${s}`)
      : [breed];
  return folders.flatMap((folder) => POOLS.get(folder)!.map((file) => `${folder}/${file}`));
}

function parseCount(raw: string): number {
  const n = Number.parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 1) return 1;
  return Math.min(n, MAX_COUNT);
}

// ---------- SVG pictures ----------

const READABLE: Record<string, string> = {
  germanshepherd: "German shepherd",
  stbernard: "St. Bernard",
  mexicanhairless: "Mexican hairless",
  cotondetulear: "Coton de Tulear",
  shihtzu: "Shih tzu",
  sharpei: "Shar pei",
  germanlonghair: "German longhair",
  kerryblue: "Kerry blue",
  westhighland: "West highland",
  flatcoated: "Flat-coated",
};

function readableName(folder: string): string {
  const [breed = "", sub] = folder.split("-");
  const words = sub ? `${READABLE[sub] ?? sub} ${READABLE[breed]?.toLowerCase() ?? breed}` : (READABLE[breed] ?? breed);
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function dogSvg(folder: string, file: string): string {
  const h = hash(folder);
  const hue = h % 360;
  const coat = `hsl(${(hue + 180) % 360} 35% 35%)`;
  const number = /_(\d+)\./.exec(file)?.[1] ?? "";
  const tilt = (hash(file) % 21) - 10;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360" viewBox="0 0 480 360" role="img" aria-label="${readableName(folder)} photo ${number}">
  <defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
    <stop offset="0" stop-color="hsl(${hue} 70% 85%)"/><stop offset="1" stop-color="hsl(${(hue + 40) % 360} 60% 70%)"/>
  </linearGradient></defs>
  <rect width="480" height="360" fill="url(#bg)"/>
  <circle cx="400" cy="70" r="34" fill="hsl(${hue} 90% 96%)" opacity="0.8"/>
  <g transform="rotate(${tilt} 240 170)" fill="${coat}">
    <ellipse cx="250" cy="200" rx="95" ry="50"/>
    <rect x="180" y="220" width="20" height="70" rx="9"/><rect x="215" y="225" width="20" height="65" rx="9"/>
    <rect x="280" y="225" width="20" height="65" rx="9"/><rect x="313" y="220" width="20" height="70" rx="9"/>
    <path d="M340 180 q45 -40 40 -85" stroke="${coat}" stroke-width="14" fill="none" stroke-linecap="round"/>
    <circle cx="165" cy="140" r="45"/>
    <ellipse cx="128" cy="120" rx="16" ry="36" transform="rotate(20 128 120)"/>
    <ellipse cx="200" cy="112" rx="16" ry="36" transform="rotate(-20 200 112)"/>
    <ellipse cx="130" cy="160" rx="30" ry="20"/>
    <circle cx="105" cy="155" r="8" fill="#222"/>
    <circle cx="160" cy="130" r="6" fill="#fff"/><circle cx="161" cy="131" r="3" fill="#222"/>
  </g>
  <rect x="0" y="304" width="480" height="56" fill="rgba(255,255,255,0.75)"/>
  <text x="240" y="339" font-family="system-ui, sans-serif" font-size="24" text-anchor="middle" fill="#222">${readableName(folder)} · #${number}</text>
</svg>
`;
}

// ---------- replies ----------

function sendJson(res: http.ServerResponse, status: number, body: unknown, cacheControl: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": cacheControl,
  });
  res.end(text);
}

const success = (res: http.ServerResponse, message: unknown, cacheControl = "public, max-age=600") =>
  sendJson(res, 200, { message, status: "success" }, cacheControl);

const notFound = (res: http.ServerResponse, message: string) =>
  sendJson(res, 404, { status: "error", message, code: 404 }, "no-store");

const NO_MAIN_BREED = "Breed not found (main breed does not exist)";
const NO_SUB_BREED = "Breed not found (sub breed does not exist)";

function sendHtml(res: http.ServerResponse, status: number, title: string, headers: Record<string, string> = {}): void {
  const text = `<!DOCTYPE html><html><head><title>${status} ${title}</title></head><body><h1>${title}</h1></body></html>`;
  res.writeHead(status, {
    "Content-Type": "text/html; charset=UTF-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

// ---------- the server ----------

/**
 * latencyMs: every breed image-list answer (the call a worker makes) comes this late, like a distant dog.ceo; faults
 * still apply.
 */
export function startFakeDogApi(opts: { port?: number; host?: string; latencyMs?: number } = {}): Promise<FakeDogApi> {
  const host = opts.host ?? "127.0.0.1";
  const plan: FaultPlan = { queue: [], rates: {} };
  let roll = prng(1);
  let requests = 0;
  const arrivals: { path: string; at: number }[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let origin = "";

  function nextFault(): { kind: FaultKind; delayMs: number } | undefined {
    const queued = plan.queue.shift();
    if (queued) return queued;
    let r = roll();
    for (const [kind, p] of Object.entries(plan.rates) as [RandomFaultKind, number][]) {
      if (r < p) return { kind, delayMs: SLOW_DEFAULT_MS };
      r -= p;
    }
    return undefined;
  }

  /** Serves a fault instead of the answer ("slow" serves the answer late). */
  function serveFault(fault: { kind: FaultKind; delayMs: number }, res: http.ServerResponse, answer: () => void): void {
    switch (fault.kind) {
      case "http500":
        return sendHtml(res, 500, "Internal Server Error");
      case "http503":
        return sendHtml(res, 503, "Service Unavailable");
      case "http429":
        return sendHtml(res, 429, "Too Many Requests", { "Retry-After": "1" });
      case "hang":
        return; // never answer; close() destroys the socket
      case "longError": {
        // A refusal whose message is 900 KB of text (under the client's 1 MiB cap, so it is read).
        const body = JSON.stringify({
          status: "error",
          message: `Breed not found (${"x".repeat(900_000)})`,
          code: 400,
        });
        res.writeHead(400, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
        return void res.end(body);
      }
      case "badJson":
        res.writeHead(200, { "Content-Type": "text/html", "Access-Control-Allow-Origin": "*" });
        res.end("<html>not json</html>");
        return;
      case "truncated": {
        const text = JSON.stringify({ message: pugLinks(4), status: "success" });
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
        res.write(text.slice(0, text.length / 2), () => res.socket?.destroy());
        return;
      }
      case "drip": {
        // A valid answer, one byte every delayMs: never silent long enough for an idle timeout to fire.
        const body = Buffer.from(JSON.stringify({ message: pugLinks(4), status: "success" }));
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": body.length });
        let sent = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return stop();
          res.write(body.subarray(sent, ++sent));
          if (sent === body.length) {
            res.end();
            stop();
          }
        }, fault.delayMs);
        const stop = () => {
          clearInterval(timer);
          timers.delete(timer);
        };
        timers.add(timer);
        res.once("close", stop); // the client gave up
        return;
      }
      case "huge": {
        // A 2 MiB success answer with no Content-Length (chunked), so only counting bytes can stop it.
        const body = hugeAnswer();
        res.writeHead(200, { "Content-Type": "application/json" });
        let sent = 0;
        const pump = () => {
          while (sent < body.length && !res.destroyed) {
            const chunk = body.subarray(sent, (sent += HUGE_CHUNK_BYTES));
            if (sent >= body.length) res.end(chunk);
            else if (!res.write(chunk)) return void res.once("drain", pump);
          }
        };
        pump();
        return;
      }
      case "slow": {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, fault.delayMs);
        timers.add(timer);
        return;
      }
    }
  }

  const pugLinks = (count: number) =>
    imagesOf("pug", undefined)
      .slice(0, count)
      .map((path) => `${origin}/images/breeds/${path}`);

  let huge: Buffer | undefined;
  function hugeAnswer(): Buffer {
    if (!huge) {
      const links = pugLinks(Infinity);
      const message: string[] = [];
      let size = JSON.stringify({ message, status: "success" }).length - 1; // the first link has no comma
      for (let i = 0; size < HUGE_BYTES; i++) {
        const link = links[i % links.length]!;
        message.push(link);
        size += link.length + 3; // quotes and comma
      }
      huge = Buffer.from(JSON.stringify({ message, status: "success" }));
    }
    return huge;
  }

  function imageList(
    res: http.ServerResponse,
    breed: string,
    sub: string | undefined,
    count: string | undefined | null,
  ): void {
    const answer = () => {
      if (!Object.hasOwn(BREEDS, breed)) return notFound(res, NO_MAIN_BREED);
      if (sub !== undefined && !BREEDS[breed]!.includes(sub)) return notFound(res, NO_SUB_BREED);
      const urls = imagesOf(breed, sub).map((path) => `${origin}/images/breeds/${path}`);
      if (count === null) return success(res, urls); // the whole list
      if (count === undefined) return success(res, sample(urls, 1)[0], "no-store");
      success(res, sample(urls, Math.min(parseCount(count), urls.length)), "no-store");
    };
    requests++;
    const fault = nextFault() ?? (opts.latencyMs ? { kind: "slow" as const, delayMs: opts.latencyMs } : undefined);
    if (fault) serveFault(fault, res, answer);
    else answer();
  }

  function route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0]!;
    if (path.startsWith("/api/")) {
      if (arrivals.length >= MAX_ARRIVALS) arrivals.splice(0, MAX_ARRIVALS / 2); // halving keeps a long run cheap
      arrivals.push({ path, at: Date.now() });
    }
    const seg = path
      .split("/")
      .slice(1)
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      });
    const get = req.method === "GET" || req.method === "HEAD";

    if (get && seg[0] === "images" && seg[1] === "breeds" && seg.length === 4) {
      const [, , folder = "", file = ""] = seg;
      if (POOLS.get(folder)?.includes(file)) {
        const svg = dogSvg(folder, file);
        res.writeHead(200, {
          "Content-Type": "image/svg+xml",
          "Content-Length": Buffer.byteLength(svg),
          "Cache-Control": "public, max-age=2592000, immutable",
          "Access-Control-Allow-Origin": "*",
        });
        return void res.end(svg);
      }
      res.writeHead(404, { "Content-Type": "text/plain" });
      return void res.end("Not Found");
    }

    if (get && seg[0] === "api") {
      const [, a, b, c, d, e, f] = seg;
      const n = seg.length;
      if (a === "breeds" && b === "list" && c === "all" && n === 4) return success(res, BREEDS);
      if (a === "breeds" && b === "list" && n === 3) return success(res, Object.keys(BREEDS));
      if (a === "breeds" && b === "image" && c === "random" && (n === 4 || n === 5)) {
        const all = [...POOLS.entries()].flatMap(([folder, files]) =>
          files.map((file) => `${origin}/images/breeds/${folder}/${file}`),
        );
        return n === 4
          ? success(res, sample(all, 1)[0], "no-store")
          : success(res, sample(all, parseCount(d!)), "no-store");
      }
      if (a === "breed" && b !== undefined) {
        if (c === "list" && n === 4)
          return Object.hasOwn(BREEDS, b) ? success(res, BREEDS[b]) : notFound(res, NO_MAIN_BREED);
        if (c === "images" && n === 4) return imageList(res, b, undefined, null);
        if (c === "images" && d === "random" && n === 5) return imageList(res, b, undefined, undefined);
        if (c === "images" && d === "random" && n === 6) return imageList(res, b, undefined, e);
        if (c !== undefined && d === "images" && n === 5) return imageList(res, b, c, null);
        if (c !== undefined && d === "images" && e === "random" && n === 6) return imageList(res, b, c, undefined);
        if (c !== undefined && d === "images" && e === "random" && n === 7) return imageList(res, b, c, f);
      }
    }
    notFound(res, `No route found for "${req.method} ${path}"`);
  }

  const server = http.createServer(route);
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
      origin = `http://${urlHost}:${port}`;
      let closing: Promise<void> | undefined;
      resolve({
        url: `${origin}/api`,
        origin,
        get requests() {
          return requests;
        },
        get arrivals() {
          return arrivals;
        },
        get openSockets() {
          return sockets.size;
        },
        failNext(kind, times = 1, faultOpts = {}) {
          const delayMs = faultOpts.delayMs ?? (kind === "drip" ? DRIP_DEFAULT_MS : SLOW_DEFAULT_MS);
          for (let i = 0; i < times; i++) plan.queue.push({ kind, delayMs });
        },
        setFaultRate(rates, seed = 1) {
          plan.rates = { ...rates };
          roll = prng(seed);
        },
        clearFaults() {
          plan.queue = [];
          plan.rates = {};
        },
        close() {
          closing ??= new Promise<void>((done) => {
            for (const timer of timers) clearTimeout(timer);
            timers.clear();
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          });
          return closing;
        },
      });
    });
  });
}

// ---------- run directly: `npm run fake-dog-api` ----------

/**
 * FAKE_DOG_FAULTS="http500=0.1,slow=0.2" turns on random faults when run directly; FAKE_DOG_LATENCY_MS=100 delays every
 * image list.
 */
export function faultRatesFromEnv(text: string | undefined): Partial<Record<RandomFaultKind, number>> {
  const rates: Partial<Record<RandomFaultKind, number>> = {};
  for (const pair of (text ?? "").split(",").filter(Boolean)) {
    const [kind, p] = pair.split("=");
    if (kind === "http500" || kind === "hang" || kind === "badJson" || kind === "truncated" || kind === "slow")
      rates[kind] = Number(p);
  }
  return rates;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const latencyMs = Number(process.env.FAKE_DOG_LATENCY_MS ?? 0);
  const api = await startFakeDogApi({ port: Number(process.env.PORT ?? 8090), host: process.env.HOST, latencyMs });
  const rates = faultRatesFromEnv(process.env.FAKE_DOG_FAULTS);
  if (Object.keys(rates).length) api.setFaultRate(rates, Date.now());
  console.log(
    `fake dog.ceo API listening on ${api.url}${Object.keys(rates).length ? ` (random faults: ${process.env.FAKE_DOG_FAULTS})` : ""}${latencyMs ? ` (latency ${latencyMs} ms)` : ""}`,
  );
  const stop = () => void api.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
