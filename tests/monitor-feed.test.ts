// The monitor feed: the web's look, every few seconds while a page watches, that tells the
// pages when the queue or workers panels changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventHub, type NumberedEvent } from "../lib/live/eventHub.ts";
import { startMonitorFeed } from "../lib/monitor/feed.ts";
import { WorkerRegistry } from "../lib/monitor/workerRegistry.ts";
import { heartbeat } from "./support/fakes.ts";
import { waitFor } from "./support/stack.ts";

const beat = (paused: boolean) => heartbeat("worker-1", { paused });

test("when the broker never answers the queue's numbers, then a worker that pauses still reaches the pages", async (t) => {
  const hub = new EventHub();
  const heard: NumberedEvent[] = [];
  t.after(hub.subscribe((event) => heard.push(event)));
  const workers = new WorkerRegistry();
  workers.heartbeat(beat(false));
  const feed = startMonitorFeed({ hub, workers, monitor: () => new Promise(() => {}), intervalMs: 20, waitMs: 50 });
  t.after(() => feed.stop());

  await new Promise((resolve) => setTimeout(resolve, 200)); // a few looks, the panels as they were
  workers.heartbeat(beat(true));
  await waitFor(
    "a monitor event saying the worker paused",
    async () => heard.some((e) => e.event.type === "monitor" && e.event.workers === "paused"),
    5_000,
  );
});

test("when a worker pauses while no page watches and a page drawn before it opens, then the next look tells the page", async (t) => {
  const hub = new EventHub();
  const workers = new WorkerRegistry();
  workers.heartbeat(beat(false));
  const feed = startMonitorFeed({ hub, workers, monitor: async () => ({}) as never, intervalMs: 50 });
  t.after(() => feed.stop());
  await new Promise((resolve) => setTimeout(resolve, 200)); // no page yet: no look
  workers.heartbeat(beat(true)); // the page was drawn before this
  const heard: NumberedEvent[] = [];
  t.after(hub.subscribe((event) => heard.push(event)));
  await waitFor("a monitor event saying the worker paused", async () => heard.length > 0, 5_000);
  assert.deepEqual(heard[0].event, { type: "monitor", workers: "paused" });
});

test("when nothing changes, then a page that starts watching hears nothing, however long it watches", async (t) => {
  const hub = new EventHub();
  const workers = new WorkerRegistry();
  workers.heartbeat(beat(false));
  const feed = startMonitorFeed({ hub, workers, monitor: async () => ({ ready: 0 }) as never, intervalMs: 20 });
  t.after(() => feed.stop());
  const heard: NumberedEvent[] = [];
  t.after(hub.subscribe((event) => heard.push(event)));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(heard, []);
});
