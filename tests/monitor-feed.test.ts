// The monitor feed: the web's look, every few seconds while a page watches, that tells the
// pages when the queue or workers panels are not what it last told them, with a digest of
// the panels that a page drawn with the same ones skips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventHub, type NumberedEvent } from "../lib/live/eventHub.ts";
import { panelsDigest, startMonitorFeed } from "../lib/monitor/feed.ts";
import type { QueueOverview } from "../lib/monitor/overview.ts";
import { WorkerRegistry } from "../lib/monitor/workerRegistry.ts";
import { heartbeat } from "./support/fakes.ts";
import { waitFor } from "./support/stack.ts";

const beat = (paused: boolean) => heartbeat("worker-1", { paused });
const overview = { ready: 0 } as unknown as QueueOverview;

function watch(hub: EventHub, t: { after: (fn: () => void) => void }): NumberedEvent[] {
  const heard: NumberedEvent[] = [];
  t.after(hub.subscribe((event) => heard.push(event)));
  return heard;
}

test("when the broker never answers the queue's numbers, then a worker that pauses still reaches the pages", async (t) => {
  const hub = new EventHub();
  const heard = watch(hub, t);
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

test("when a page was drawn just before a worker paused, then the feed's first look tells it, with other panels than the page's", async (t) => {
  const hub = new EventHub();
  const workers = new WorkerRegistry();
  workers.heartbeat(beat(false));
  const drawnWith = panelsDigest(overview, workers.list()); // the page, drawn now
  workers.heartbeat(beat(true)); // then the worker pauses, before any look
  const heard = watch(hub, t);
  const feed = startMonitorFeed({ hub, workers, monitor: async () => overview, intervalMs: 20 });
  t.after(() => feed.stop());
  await waitFor("a monitor event", async () => heard.length > 0, 5_000);
  const told = heard[0]!.event;
  assert.equal(told.type === "monitor" && told.workers, "paused");
  assert.notEqual(told.type === "monitor" && told.panels, drawnWith, "the page sees it is news");
});

test("when nothing changes, then the feed tells the panels a page drawn now carries, once, and nothing more", async (t) => {
  const hub = new EventHub();
  const workers = new WorkerRegistry();
  workers.heartbeat(beat(false));
  const drawnWith = panelsDigest(overview, workers.list());
  const heard = watch(hub, t);
  const feed = startMonitorFeed({ hub, workers, monitor: async () => overview, intervalMs: 20 });
  t.after(() => feed.stop());
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(
    heard.map((e) => e.event),
    [{ type: "monitor", workers: "running", panels: drawnWith }],
  );
});
