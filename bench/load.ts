// Load generation. autocannon (Matteo Collina's, the usual Node HTTP load tool, kept up to
// date) fits the brief as it is: a fixed `amount` of requests spread over N keep-alive
// connections, each connection sending its next request as soon as the previous answers
// (closed loop, like 10 real clients), and no pipelining unless asked. Its histogram
// rounds latency to whole milliseconds, so we keep every response time from its
// 'response' event instead and take exact percentiles (page p99s are a few ms, and their
// ratio is a target).
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import amqplib from "amqplib";
import autocannon from "autocannon";
import { AMQP_URL } from "./processes.ts";

export interface LoadResult {
  requests: number;
  /** 2xx answers; anything else, and connection errors and timeouts, are `failed`. */
  ok: number;
  failed: number;
  /** The status codes of the non-2xx answers, e.g. {"500": 3}. */
  statuses: Record<string, number>;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadOptions {
  url: string;
  method?: "GET" | "POST";
  body?: unknown;
  /** Requests in all; or, without it, send for durationS seconds. */
  amount?: number;
  durationS?: number;
  connections?: number;
  /** The whole load is stopped after this long, whatever is left. */
  deadlineMs?: number;
  /** Told each 2xx answer's time, for percentiles over several loads. */
  onAnswer?: (ms: number) => void;
}

/** Nearest-rank percentile of unsorted values (NaN when there are none). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function drive(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = []; // of 2xx answers, as autocannon counts them
  const statuses: Record<string, number> = {};
  let rejected = 0;
  const started = performance.now();
  let finished = started;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: options.method ?? "GET",
        connections: options.connections ?? 10,
        ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 3 }),
        ...(options.body === undefined
          ? {}
          : { body: JSON.stringify(options.body), headers: { "content-type": "application/json" } }),
        timeout: 10, // seconds per request: a stuck server shows as failures, not a hang
      },
      (err, result) => {
        clearTimeout(guard);
        if (err) return reject(err);
        // Not result.duration: autocannon notices the end only at its next 1 s tick.
        const seconds = (finished - started) / 1000;
        const failed = rejected + result.errors; // errors and timeouts give no 'response' event
        resolve({
          requests: latencies.length + failed,
          ok: latencies.length,
          failed,
          statuses,
          seconds,
          reqPerSec: latencies.length / seconds,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
        });
      },
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      finished = performance.now();
      if (statusCode >= 200 && statusCode <= 299) {
        latencies.push(responseTime);
        options.onAnswer?.(responseTime);
      } else {
        rejected++;
        statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      }
    });
    const guard = setTimeout(() => instance.stop(), options.deadlineMs ?? 120_000);
  });
}

/**
 * One page's p99 on two servers, nearly empty and full, taking turns every `chunk` requests
 * (`requests` each): a burst of noise on this shared machine then falls on both alike,
 * instead of on whichever was being measured.
 */
export async function alternatingP99(
  urls: { empty: string; full: string },
  requests: number,
  chunk = 50,
): Promise<{ empty: number; full: number }> {
  const answers = { empty: [] as number[], full: [] as number[] };
  for (let sent = 0; sent < requests; sent += chunk) {
    for (const size of ["empty", "full"] as const) {
      const onAnswer = (ms: number) => answers[size].push(ms);
      const result = await drive({
        url: urls[size],
        amount: Math.min(chunk, requests - sent),
        connections: 10,
        deadlineMs: 60_000,
        onAnswer,
      });
      if (result.failed)
        throw new Error(
          `${urls[size]}: ${result.failed} of ${result.requests} requests failed ${JSON.stringify(result.statuses)}`,
        );
    }
  }
  return { empty: percentile(answers.empty, 99), full: percentile(answers.full, 99) };
}

/**
 * The broker's raw rate for what the outbox relay does: persistent messages to a durable
 * queue, publisher confirms, at most `window` unconfirmed, TCP_NODELAY on (without it
 * Nagle holds pipelined confirms ~40 ms). A ceiling for submits, in msgs/s.
 */
export async function brokerConfirmRate(messages = 5000, window = 200, timeoutMs = 60_000): Promise<number> {
  const connection = await amqplib.connect(AMQP_URL, { noDelay: true });
  const queue = `gendog.bench.${randomBytes(4).toString("hex")}.confirms`;
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    const body = Buffer.from(
      JSON.stringify({ taskId: "00000000-0000-4000-8000-000000000000", breed: "hound", limit: 10, attempt: 1 }),
    );
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`broker confirms took over ${timeoutMs} ms`)), timeoutMs);
      let sent = 0;
      let confirmed = 0;
      const pump = () => {
        for (; sent < messages && sent - confirmed < window; sent++) {
          channel.sendToQueue(queue, body, { persistent: true }, (err) => {
            if (err) return reject(err instanceof Error ? err : new Error("message nacked"));
            if (++confirmed === messages) {
              clearTimeout(timer);
              resolve();
            } else pump();
          });
        }
      };
      pump();
    });
    return messages / ((performance.now() - started) / 1000);
  } finally {
    const channel = await connection.createChannel().catch(() => undefined);
    await channel?.deleteQueue(queue).catch(() => {});
    await connection.close().catch(() => {});
  }
}
