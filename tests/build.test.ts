// The production build: `npm run build` compiles web and worker to dist/, and what it
// compiled runs the whole journey on plain node, as `npm start` and the image run it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { buildAll, isStale } from "../scripts/build.ts";
import { configEnv, freePort, spawnBuilt, type ChildApp } from "./support/faults.ts";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

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

  test("then the build is fresh, and a task submitted to the compiled web is done by the compiled worker", async () => {
    assert.equal(await isStale(), false);
    const port = await freePort();
    const env = configEnv(stack.config, { PORT: String(port) });
    children.push(spawnBuilt("web", env), spawnBuilt("worker", env));
    const url = `http://127.0.0.1:${port}`;
    await waitFor("the compiled web to be ready", async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 30_000);
    const res = await fetch(`${url}/api/tasks`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ breed: "pug", limit: 2 }) });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    assert.equal((await waitForTaskState(stack.db, id, ["SUCCESS", "FAILURE"], 20_000)).state, "SUCCESS");
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /GenDog/);
  });
});
