// A web running as a child process (spawnWeb, support/faults.ts), seen from outside as a
// client or an operator sees it: plain HTTP without keep-alive, its health, its peak
// memory, and what its log lines count.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { Config } from "../../lib/platform/config.ts";
import { configEnv, freePort, spawnWeb, type ChildApp } from "./faults.ts";
import { waitFor } from "./stack.ts";

export type ChildWeb = ChildApp & { url: string };

/**
 * spawnWeb with this config on a free port, once its /readyz answers 200 (its database and broker reached); stopped if
 * it never does.
 */
export async function spawnReadyWeb(
  config: Config,
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<ChildWeb> {
  const web = spawnWeb(configEnv(config, { PORT: String(await freePort()), ...env }));
  try {
    await waitFor(
      "the web to be ready (its broker connected)",
      () =>
        httpGet(`${web.url}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        ),
      timeoutMs,
    );
    return web;
  } catch (err) {
    await web.stop();
    throw new Error(`${(err as Error).message}:\n${web.output().slice(-1500)}`, { cause: err });
  }
}

/** The web answers its health check; if it does not, the test fails with how it ended. */
export async function assertUp(web: ChildWeb): Promise<void> {
  const healthy = await httpGet(`${web.url}/healthz`).then(
    (r) => r.status === 200,
    () => false,
  );
  if (healthy) return;
  const ended = await Promise.race([web.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
  assert.fail(
    `the web does not answer (${ended ? `exited: ${JSON.stringify(ended)}` : "still running"}):\n${web.output().slice(-1500)}`,
  );
}

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

/** POSTs JSON and resolves with the answer's body if it is 202 (accepted). */
export function httpPostJson(url: string, payload: unknown): Promise<{ id: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: "POST", agent: false, headers: { "Content-Type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
        res.on("end", () =>
          res.statusCode === 202 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode}: ${text}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(payload));
  });
}

/** The most memory the process has held resident so far (Linux's VmHWM), in MiB. */
export function peakResidentMiB(pid: number): number {
  const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kib) / 1024;
}

/** How many drops the web's JSON log lines with this message count in all. */
export function droppedIn(output: string, message: string): number {
  const lines = output.split("\n").filter((line) => line.includes(`"msg":"${message}"`));
  return lines.reduce((sum, line) => sum + (JSON.parse(line) as { dropped: number }).dropped, 0);
}
