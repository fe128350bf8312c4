// amqplib settles a close only on the broker's answer: over a link that went silent it would
// wait forever, and with it a worker's shutdown (and a CI run, once).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../lib/platform/logger.ts";
import { startWorker } from "../tasks/worker.ts";
import { startTcpProxy, type TcpProxy } from "./support/faults.ts";
import { startStack, waitFor, type Stack } from "./support/stack.ts";

let stack: Stack;
let proxy: TcpProxy;
before(async () => {
  stack = await startStack({ workers: 0 });
  proxy = await startTcpProxy(5672);
});
after(async () => {
  await proxy?.close();
  await stack?.stop();
});

test(
  "when the link to the broker goes silent, then a worker still stops within seconds",
  { timeout: 60_000 },
  async () => {
    const url = new URL(stack.config.amqpUrl);
    url.host = `127.0.0.1:${proxy.port}`;
    const worker = await startWorker({ ...stack.config, amqpUrl: url.href }, createLogger("silent", "test"));
    await waitFor("the worker to consume", async () => (await stack.http().get("/api/queue")).body.consumers === 1);
    proxy.stall();
    const started = Date.now();
    await worker.stop();
    const tookMs = Date.now() - started;
    console.log(`# stop over a silent link took ${tookMs} ms`);
    // Each close or cancel the broker does not answer is given up after 2 s, a few in turn (~8 s here). Unbounded,
    // the stop never ends: a close that the heartbeat timeout cuts short is never settled.
    assert.ok(tookMs < 20_000, `the stop took ${tookMs} ms`);
  },
);
