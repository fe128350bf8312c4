// The production build: `npm run build` compiles web and worker to dist/, and what it
// compiled runs the whole journey on plain node, as `npm start` and the image run it; the
// image's health check (dist/healthcheck.js) tells a ready web and worker from stuck ones.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { projectRoot } from "../lib/platform/config.ts";
import { buildAll, isStale } from "../scripts/build.ts";
import { configEnv, freePort, spawnBuilt, type ChildApp } from "./support/faults.ts";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

/** `node dist/healthcheck.js role` as the image's HEALTHCHECK runs it: exit code and output. */
function healthcheck(
  role: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["dist/healthcheck.js", role],
      { cwd: projectRoot, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 15_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

describe("when web and worker are built and run from dist/", () => {
  let stack: Stack;
  const children: ChildApp[] = [];
  before(async () => {
    await buildAll();
    stack = await startStack({ web: false, workers: 0 });
  });
  after(async () => {
    for (const child of children) await child.stop();
    await stack?.stop();
  });

  let env: Record<string, string>;
  let worker: ChildApp;

  test("then the build is fresh, and a task submitted to the compiled web is done by the compiled worker", async () => {
    assert.equal(await isStale(), false);
    const port = await freePort();
    env = configEnv(stack.config, { PORT: String(port) });
    worker = spawnBuilt("worker", env);
    children.push(spawnBuilt("web", env), worker);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      "the compiled web to be ready",
      async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
      30_000,
    );
    const res = await fetch(`${url}/api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ breed: "pug", limit: 2 }),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    assert.equal((await waitForTaskState(stack.db, id, ["SUCCESS", "FAILURE"], 20_000)).state, "SUCCESS");
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /GenDog/);
  });

  test("and the health check passes for the ready web and worker", async () => {
    const web = await healthcheck("web", env);
    assert.equal(web.code, 0, web.stderr);
    assert.match(web.stdout, /^web ready/);
    const ready = await healthcheck("worker", env);
    assert.equal(ready.code, 0, ready.stderr);
    assert.match(ready.stdout, /^worker \S+ ready/);
    // AMQP_URL listing a cluster's nodes: the check asks the first that answers, as the worker does.
    const listed = await healthcheck("worker", {
      ...env,
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${await freePort()},${env.AMQP_URL}`,
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^worker \S+ ready/);
  });

  test("and fails, in one line, for a worker that stopped beating, a web not listening and a queue no worker set up", async () => {
    process.kill(worker.pid, "SIGSTOP");
    try {
      const stuck = await healthcheck("worker", env);
      assert.equal(stuck.code, 1);
      assert.match(stuck.stderr, /^unhealthy: no heartbeat from a worker on .* within \d+ ms\n$/);
    } finally {
      process.kill(worker.pid, "SIGCONT");
    }
    const noWeb = await healthcheck("web", { ...env, PORT: String(await freePort()) });
    assert.equal(noWeb.code, 1);
    assert.match(noWeb.stderr, /^unhealthy: web does not answer http:\/\/127\.0\.0\.1:\d+\/readyz: .*\n$/);
    const otherQueue = await healthcheck("worker", { ...env, QUEUE_NAME: `${env.QUEUE_NAME}.nobody` });
    assert.equal(otherQueue.code, 1);
    assert.match(otherQueue.stderr, /^unhealthy: the broker has no exchange \S+\.nobody\.events/);
  });
});
