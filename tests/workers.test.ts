// The monitor's workers: one that stops says goodbye and stays listed as offline; one that
// goes silent stays listed as lost; neither counts toward the jobs held now.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../lib/platform/logger.ts";
import { WorkerRegistry, type Heartbeat } from "../lib/monitor/workerRegistry.ts";
import { startWorker } from "../tasks/worker.ts";
import { startStack, waitFor, type Stack } from "./support/stack.ts";

const beat = (id: string, inFlight = 0): Heartbeat => ({
  id,
  host: "h",
  pid: 1,
  concurrency: 4,
  done: 3,
  failed: 1,
  skipped: 0,
  inFlight,
  startedAt: new Date().toISOString(),
  ready: true,
  paused: false,
});

describe("the workers a web knows of", () => {
  test("when a worker's heartbeats come in, then its done and failed per minute are read over the last minute of them", () => {
    let now = 1_000_000;
    const workers = new WorkerRegistry(10_000, 200, () => now);
    // A worker up for an hour before this web heard from it.
    const startedAt = new Date(now - 3_600_000).toISOString();
    const at = (seconds: number, done: number, failed: number) => {
      now = 1_000_000 + seconds * 1000;
      workers.heartbeat({ ...beat("w"), done, failed, startedAt });
    };
    at(0, 0, 0);
    assert.deepEqual(
      [workers.list()[0]!.donePerMinute, workers.list()[0]!.failedPerMinute],
      [null, null],
      "one heartbeat is no rate",
    );
    at(30, 10, 1); // 20 done and 2 failed a minute so far
    assert.deepEqual([workers.list()[0]!.donePerMinute, workers.list()[0]!.failedPerMinute], [20, 2]);
    for (let s = 32; s <= 120; s += 2) at(s, 10 + (s - 30), 1); // then one a second, no failures
    const { donePerMinute, failedPerMinute } = workers.list()[0]!;
    assert.ok(Math.abs(donePerMinute! - 60) <= 3, `${donePerMinute} done/min`);
    assert.equal(failedPerMinute, 0);
  });

  test("when a worker has just started, then its rates are read over its real uptime, never one job in two seconds made a pace", () => {
    const start = Date.parse("2026-12-01T10:00:00Z");
    let now = start;
    const workers = new WorkerRegistry(10_000, 200, () => now);
    const at = (id: string, seconds: number, done: number, startedAt = new Date(start).toISOString()) => {
      now = start + seconds * 1000;
      workers.heartbeat({ ...beat(id), done, failed: 0, startedAt });
      return workers.list().find((w) => w.id === id)!.donePerMinute;
    };
    // Restarted: one job between its first two heartbeats is no rate yet (it was "30.7 done/min").
    assert.equal(at("restarted", 1, 0), null);
    assert.equal(at("restarted", 3, 1), null);
    assert.equal(at("restarted", 20, 1), 3, "one job in its first 20 s");
    assert.equal(at("restarted", 60, 1), 1);
    // This web started listening late: a worker up 30 s with 10 jobs is read from its start.
    assert.equal(at("heard-late", 60, 10, new Date(start + 30_000).toISOString()), 20, "10 jobs in 30 s of uptime");
  });

  test("when one worker says goodbye and another goes silent, then both stay listed, as offline and lost, after the live one", async () => {
    const workers = new WorkerRegistry(50);
    workers.heartbeat(beat("b-silent", 2));
    workers.heartbeat(beat("c-leaving", 1));
    workers.offline(beat("c-leaving", 1));
    await new Promise((resolve) => setTimeout(resolve, 80));
    workers.heartbeat(beat("a-live", 5));
    assert.deepEqual(
      workers.list().map((w) => [w.id, w.status, w.alive, w.inFlight]),
      [
        ["a-live", "alive", true, 5],
        ["c-leaving", "offline", false, 0],
        ["b-silent", "lost", false, 2],
      ],
    );
    assert.equal(workers.inFlight(), 5, "only the live worker's jobs are held now");
    // A lost worker that comes back is alive again.
    workers.heartbeat(beat("b-silent", 0));
    assert.equal(workers.list().find((w) => w.id === "b-silent")?.status, "alive");
  });

  describe("through the API and the monitor page", () => {
    let stack: Stack;
    before(async () => {
      stack = await startStack({ workers: 0 });
    });
    after(async () => {
      await stack?.stop();
    });

    test("when a worker stops gracefully, then the monitor keeps it, marked offline, with its last numbers", async () => {
      const worker = await startWorker(stack.config, createLogger("warn", "leaving-worker"));
      await waitFor("its heartbeat", async () =>
        (await stack.http().get("/api/workers")).body.workers.some(
          (w: { id: string; status: string }) => w.id === worker.id && w.status === "alive",
        ),
      );
      await worker.stop();
      const listed = await waitFor("its goodbye", async () => {
        const { body } = await stack.http().get("/api/workers").expect(200);
        return body.workers.find((w: { id: string; status: string }) => w.id === worker.id && w.status === "offline");
      });
      assert.equal(listed.alive, false);
      assert.equal(listed.inFlight, 0);
      const page = (await stack.http().get("/tasks").expect(200)).text;
      assert.match(page, new RegExp(`data-worker-id="${worker.id}" data-status="offline"`));
      const { body: queue } = await stack.http().get("/api/queue").expect(200);
      assert.equal(queue.unacked, 0);
    });
  });
});
