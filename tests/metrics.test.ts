// Prometheus metrics, read the way Prometheus reads them: the web's /metrics for the whole
// fleet (tasks by state, the queue, the outbox, live streams) and a worker's own listener
// on METRICS_PORT for what it did (attempts, time in the queue, dog.ceo calls).
import http from "node:http";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../lib/platform/config.ts";
import { createLogger } from "../lib/platform/logger.ts";
import { webMetrics } from "../lib/platform/metrics.ts";
import { startWorker } from "../tasks/worker.ts";
import { freePort } from "./support/faults.ts";
import { queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

/** The value of the sample whose name and labels match, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe("metrics", () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  before(async () => {
    stack = await startStack({ workers: 0 });
  });
  after(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  test("when METRICS_PORT is not a port, then the worker does not start and the error names it", () => {
    assert.equal(loadConfig({}).metricsPort, 0, "off unless set");
    for (const bad of ["-1", "65536", "http", "80.5"]) {
      assert.throws(
        () => loadConfig({ METRICS_PORT: bad }),
        (err: unknown) => err instanceof ConfigError && err.variable === "METRICS_PORT",
      );
    }
  });

  test("when a task fails once and then succeeds, then the worker's own /metrics counts both attempts, the dog.ceo error and the wait", async () => {
    const port = await freePort();
    worker = await startWorker({ ...stack.config, metricsPort: port }, createLogger("warn", "metrics-worker"));
    assert.equal(worker.metricsPort, port);
    stack.fake.failNext("http500", 1);
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    assert.equal((await waitForTaskState(stack.db, body.id, ["SUCCESS", "FAILURE"])).state, "SUCCESS");
    const attempts = await stack.db.attempt.findMany({ where: { taskId: body.id }, orderBy: { id: "asc" } });
    assert.deepEqual(
      attempts.map((a) => a.outcome),
      ["RETRY", "SUCCESS"],
    );

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const worker_ = { process: "worker" };
    assert.equal(sample(text, "gendog_attempts_total", { ...worker_, outcome: "RETRY" }), 1);
    assert.equal(sample(text, "gendog_attempts_total", { ...worker_, outcome: "SUCCESS" }), 1);
    assert.equal(sample(text, "gendog_attempts_total", { ...worker_, outcome: "FAILURE" }), 0);
    assert.equal(sample(text, "gendog_attempt_duration_seconds_count", { ...worker_, outcome: "SUCCESS" }), 1);
    assert.equal(sample(text, "gendog_dogceo_errors_total", { ...worker_, kind: "transient", reason: "http_5xx" }), 1);
    assert.equal(sample(text, "gendog_dogceo_request_duration_seconds_count", { ...worker_, result: "ok" }), 1);
    assert.equal(sample(text, "gendog_dogceo_request_duration_seconds_count", { ...worker_, result: "error" }), 1);
    // Only a task's first run waited in the queue for the broker's hand-off.
    assert.equal(sample(text, "gendog_queue_wait_seconds_count", worker_), 1);
    assert.ok((sample(text, "gendog_process_resident_memory_bytes", worker_) ?? 0) > 10e6, "process metrics too");
    assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  });

  test("when the web is scraped, then it reports tasks by state as the database holds them, the queue, the outbox and open streams", async () => {
    // Tasks of every kind to count: these finish (a worker runs), and one the broker never got.
    for (let i = 0; i < 2; i++) {
      const { body } = await stack.http().post("/api/tasks").send({ breed: "kelpie", limit: 1 }).expect(202);
      await waitForTaskState(stack.db, body.id, ["SUCCESS"]);
    }
    await stack.db.task.create({ data: { id: crypto.randomUUID(), breed: "pug", limit: 1 } });

    const stream = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${stack.url}/events`, { headers: { Accept: "text/event-stream" } }, resolve).on("error", reject),
    );
    try {
      const web = { process: "web" };
      // The worker of the test before is heard from by its heartbeat, every 2 s.
      const text = await waitFor("a scrape that counts the worker", async () => {
        const res = await stack
          .http()
          .get("/metrics")
          .expect(200)
          .expect("Content-Type", /^text\/plain/);
        return sample(res.text, "gendog_workers", { ...web, status: "alive" }) === 1 ? res.text : undefined;
      });
      for (const state of ["PENDING", "SUCCESS"] as const) {
        assert.equal(
          sample(text, "gendog_tasks", { ...web, state }),
          await stack.db.task.count({ where: { state } }),
          state,
        );
      }
      assert.equal(sample(text, "gendog_broker_up", web), 1);
      assert.equal(sample(text, "gendog_queue_ready", web), await queueDepth(stack.config.queueName));
      assert.equal(sample(text, "gendog_queue_dead", web), await queueDepth(`${stack.config.queueName}.dead`));
      assert.equal(
        sample(text, "gendog_outbox_backlog", web),
        await stack.db.outboxMessage.count({ where: { sentAt: null } }),
      );
      assert.equal(sample(text, "gendog_sse_clients", web), 1);
      assert.equal(sample(text, "gendog_workers", { ...web, status: "alive" }), 1);
    } finally {
      stream.destroy();
    }
    await waitFor(
      "the stream to close",
      async () => sample((await stack.http().get("/metrics")).text, "gendog_sse_clients") === 0,
    );
  });

  test("when the broker cannot be asked, then the queue gauges are left out of the scrape, not reported as 0", async () => {
    const down = {
      broker: { connected: false },
      queue: null,
      ready: null,
      reruns: null,
      unacked: 0,
      consumers: null,
      retrying: null,
      dead: null,
      waitingInOutbox: 3,
    };
    const registry = webMetrics({
      taskCounts: async () => ({ PENDING: 2 }),
      monitor: async () => down,
      openStreams: () => 0,
      workers: () => [],
    });
    const text = await registry.metrics();
    assert.equal(sample(text, "gendog_broker_up"), 0);
    for (const name of ["gendog_queue_ready", "gendog_queue_retrying", "gendog_queue_dead", "gendog_queue_consumers"])
      assert.equal(sample(text, name), undefined, name);
    assert.equal(sample(text, "gendog_outbox_backlog"), 3);
    assert.equal(sample(text, "gendog_tasks", { state: "PENDING" }), 2);
  });
});
