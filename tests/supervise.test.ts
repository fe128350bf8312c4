// `npm run demo` and `npm start` run the web and the worker under one runner
// (scripts/supervise.ts). A worker that dies is an incident, not an outage: the web keeps
// answering and the worker is started again, with a pause that grows with quick deaths.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { projectRoot } from "../lib/platform/config.ts";
import { restartDelay } from "../scripts/supervise.ts";
import { configEnv, freePort } from "./support/faults.ts";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

interface WorkerRow {
  id: string;
  pid: number;
  status: string;
}

describe("the runner of npm run demo and npm start", () => {
  let stack: Stack;
  let demo: ChildProcess;
  let url: string;
  const output: string[] = [];

  before(async () => {
    // The stack gives a database, a queue name and a cleanup; the demo brings its own web, worker and stand-in.
    stack = await startStack({ workers: 0, web: false });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      ...configEnv(stack.config, { PORT: String(port), FAKE_DOG_API_PORT: "0", LOG_FORMAT: "json", LOG_LEVEL: "warn" }),
    };
    // Its own process group, so the test can stop the demo and everything it started.
    demo = spawn(process.execPath, ["--import", "tsx", path.join(projectRoot, "dev/demo.ts")], {
      cwd: projectRoot,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    demo.stdout!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    demo.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  });
  after(async () => {
    if (demo?.pid && demo.exitCode === null) {
      const exited = new Promise((resolve) => demo.once("exit", resolve));
      process.kill(-demo.pid, "SIGTERM");
      const timer = setTimeout(() => process.kill(-demo.pid!, "SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await stack?.stop();
  });

  async function aliveWorkers(): Promise<WorkerRow[]> {
    const res = await fetch(`${url}/api/workers`).catch(() => undefined);
    if (!res?.ok) return [];
    return ((await res.json()) as { workers: WorkerRow[] }).workers.filter((w) => w.status === "alive");
  }

  test(
    "when the worker is killed with SIGKILL, then the web keeps answering and a new worker takes the next task",
    { timeout: 120_000 },
    async () => {
      const [first] = await waitFor(
        "the demo's worker to report",
        async () => ((await aliveWorkers()).length === 1 ? aliveWorkers() : undefined),
        60_000,
      ).catch((err) => {
        throw new Error(`${err.message}\n${output.join("").slice(-3000)}`);
      });
      process.kill(first!.pid, "SIGKILL");

      const replacement = await waitFor(
        "a new worker",
        async () => {
          // Every look also asks the web: it must never stop answering meanwhile.
          const health = await fetch(`${url}/healthz`).catch((err: Error) => err);
          assert.ok(
            !(health instanceof Error) && health.ok,
            `the web stopped answering after the worker died: ${health instanceof Error ? health.message : health.status}\n${output.join("").slice(-2000)}`,
          );
          return (await aliveWorkers()).find((w) => w.id !== first!.id);
        },
        60_000,
      );
      assert.notEqual(replacement.pid, first!.pid);

      const res = await fetch(`${url}/api/tasks`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ breed: "pug", limit: 1 }),
      });
      assert.equal(res.status, 202);
      const { id } = (await res.json()) as { id: string };
      await waitForTaskState(stack.db, id, ["SUCCESS"], 30_000);
    },
  );

  test("restarts wait longer after each quick death, up to a cap", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 20].map((n) => restartDelay(n)),
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
    );
  });
});
