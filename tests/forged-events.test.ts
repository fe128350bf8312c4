// Whoever can publish on the events exchange can send the webs anything: task events of
// any size or shape, and heartbeats of workers that do not exist. Sent here straight to the
// app's own exchange, as an attacker would, while a page listens.
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseAppEvent } from "../lib/live/eventCheck.ts";
import { EventHub, HISTORY_LIMITS } from "../lib/live/eventHub.ts";
import { toPhotoView, toTaskView } from "../lib/lifecycle/shapes.ts";
import { MAX_ERROR_LENGTH } from "../lib/platform/text.ts";
import { MAX_LIMIT } from "../lib/lifecycle/validation.ts";
import { MAX_LINK_LENGTH } from "../tasks/run.ts";
import { MAX_EVENT_BYTES } from "../tasks/broker/subscriptions.ts";
import { MAX_TRACKED_WORKERS, WorkerRegistry, parseHeartbeat, type Heartbeat } from "../lib/monitor/workerRegistry.ts";
import { pino } from "pino";
import { controlKey } from "../lib/monitor/controlMessages.ts";
import { relayEvents } from "../lib/live/eventRelay.ts";
import { Broker } from "../tasks/queue.ts";
import { createLogger } from "../lib/platform/logger.ts";
import { signHeartbeat } from "../lib/monitor/signedHeartbeats.ts";
import { startWorker } from "../tasks/worker.ts";
import { forgeEvents, forgeEventsOnce } from "./support/exchange.ts";
import { AMQP_URL, deleteQueues, startStack, waitFor, type Stack } from "./support/stack.ts";
import {
  assertUp,
  droppedIn,
  httpPostJson,
  peakResidentMiB,
  spawnReadyWeb,
  type ChildWeb,
} from "./support/childWeb.ts";
import { listen } from "./support/liveStream.ts";
import { heartbeat } from "./support/fakes.ts";

const KiB = 1024;

const publishEvents = (stack: Stack, messages: [routingKey: string, body: Buffer | string][]) =>
  forgeEventsOnce(stack.config.queueName, messages);

describe("forged task events on the events exchange", () => {
  let stack: Stack;
  let web: ChildWeb;
  before(async () => {
    stack = await startStack({ workers: 1, web: false });
    // As `npm start` runs it: a 256 MB old generation.
    web = await spawnReadyWeb(stack.config, { NODE_OPTIONS: "--max-old-space-size=256 --max-semi-space-size=8" });
  });
  after(async () => {
    await web?.stop();
    await stack?.stop();
  });

  test(
    "when 40 task events of 4 MB and malformed ones arrive while a page listens, then the web drops and logs them, stays up, and the page keeps its stream and hears the next real task",
    { timeout: 180_000 },
    async () => {
      const page = listen(`${web.url}/events`);
      try {
        await waitFor("the page's snapshot", () => page.events.some((e) => e.type === "snapshot"));
        const before = peakResidentMiB(web.pid);
        const huge = Buffer.from(JSON.stringify({ type: "task", task: { id: "x".repeat(4 * 1024 * KiB) } }));
        // In batches, a browser's reconnect (2 s) apart: a page cut off asks for what it missed.
        for (let i = 0; i < 4 && web.child.exitCode === null; i++) {
          await publishEvents(
            stack,
            Array.from({ length: 10 }, () => ["task.task", huge] as [string, Buffer]),
          );
          await new Promise((resolve) => setTimeout(resolve, 2500));
        }
        await publishEvents(stack, [
          ["task.task", JSON.stringify({ type: "task", task: 5 })],
          ["task.task", JSON.stringify({ type: "task", task: { id: "a", state: "EXPLODED" } })],
          ["task.photos", JSON.stringify({ type: "photos", taskId: "a", photos: "many" })],
          ["task.photos-cleared", JSON.stringify({ type: "photos-cleared", deleted: "all" })],
          ["task.task", "not json"],
        ]);

        // The web still serves, and the page's stream still carries real events.
        await assertUp(web);
        const submitted = await httpPostJson(`${web.url}/api/tasks`, { breed: "pug", limit: 1 });
        await waitFor(
          "the real task's success on the page",
          () =>
            page.events.some(
              (e) => e.type === "task" && e.data?.task?.id === submitted.id && e.data.task.state === "SUCCESS",
            ),
          30_000,
        );
        assert.equal(page.opens, 1, "the page's stream was never cut off");
        assert.ok(page.largest < 128 * KiB, `an event of ${page.largest} characters reached the page`);
        assert.match(
          web.output(),
          /"routingKey":"task.task","bytes":4194\d+,"limit":131072,"dropped":1,"msg":"dropped an event over the size limit"/,
        );
        // The rest are told in a line at the end of each quiet 10 s.
        await waitFor(
          "every drop to be logged",
          () => droppedIn(web.output(), "dropped an event over the size limit") === 40,
          25_000,
        );
        assert.match(web.output(), /"routingKey":"task.task","dropped":1,"msg":"dropped a task event that is not one"/);
        assert.match(web.output(), /"msg":"dropped an event that is not JSON"/);
        const grown = peakResidentMiB(web.pid) - before;
        console.log(`40 forged 4 MB task events: the web's peak resident memory grew by ${grown.toFixed(1)} MiB`);
        assert.ok(grown < 100, `peak memory grew by ${grown.toFixed(0)} MiB`);
      } finally {
        page.close();
      }
    },
  );
});

describe("the checks on task events", () => {
  test("when a real task makes its largest event (the most photos, the longest links, names and error), then it passes the size limit and the checks unchanged", () => {
    const at = new Date();
    const task = toTaskView({
      ...{
        id: randomUUID(),
        breed: "b".repeat(40),
        subBreed: "s".repeat(40),
        limit: MAX_LIMIT,
        state: "SUCCESS",
        error: "\u0001".repeat(MAX_ERROR_LENGTH),
      },
      ...{
        photoCount: MAX_LIMIT,
        attemptCount: 20,
        createdAt: at,
        queuedAt: at,
        startedAt: at,
        finishedAt: at,
        retryAt: at,
        updatedAt: at,
      },
      ...{
        retriedAt: at,
        retriedBy: `${"u".repeat(64)} from ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`,
        attemptBase: 0,
      },
    } as Parameters<typeof toTaskView>[0]);
    const url = (i: number) => `https://images.dog.ceo/breeds/${i}/`.padEnd(MAX_LINK_LENGTH, "x");
    const photos = Array.from({ length: MAX_LIMIT }, (_, i) =>
      toPhotoView({ id: 2 ** 31 - i, url: url(i), breed: "b".repeat(40), subBreed: "s".repeat(40), createdAt: at }),
    );
    const event = { type: "task" as const, task, photos };
    const bytes = Buffer.byteLength(JSON.stringify(event));
    assert.ok(bytes <= MAX_EVENT_BYTES * 0.95, `${bytes} bytes`);
    assert.deepEqual(parseAppEvent(JSON.parse(JSON.stringify(event))), event);
  });

  test("when an event has a field a real one never has, or one out of range, then it is dropped, and extra fields are left out", () => {
    const photos = photosEvent(1);
    assert.deepEqual(parseAppEvent({ ...photos, extra: "x".repeat(1000) }), photos);
    for (const bad of [
      { ...photos, taskId: "not-an-id" },
      { ...photos, photos: [{ ...photos.photos[0], url: "javascript:alert(1)" }] },
      { ...photos, photos: Array.from({ length: MAX_LIMIT + 1 }, () => photos.photos[0]) },
      { type: "photos-cleared", deleted: -1 },
      { type: "monitor" },
      { type: "task", task: { id: randomUUID() } },
      [photos],
      null,
    ]) {
      assert.equal(parseAppEvent(bad), undefined, JSON.stringify(bad).slice(0, 100));
    }
  });
});

describe("what a web keeps for browsers that reconnect", () => {
  test("when events keep coming, then what it keeps to replay stays within 128 KiB of them, however many and however large they are", () => {
    const hub = new EventHub();
    for (let i = 0; i < 300; i++) hub.publish(photosEvent(10)); // ~21 KB each
    // The oldest id a browser may come back with and still be sent what it missed.
    let from = hub.lastId;
    while (from > 0 && hub.since(from - 1)) from -= 1;
    const kept = hub.since(from)!;
    const bytes = kept.reduce((sum, e) => sum + JSON.stringify(e.event).length, 0);
    assert.ok(bytes <= 128 * KiB, `${kept.length} events of ${bytes} bytes kept`);
    assert.ok(kept.length >= 5, `${kept.length} events kept`);
    assert.ok(hub.heldBytes <= HISTORY_LIMITS.bytes, `${hub.heldBytes} bytes held`);
    assert.equal(hub.since(from - 1), undefined, "one further back is told to take a snapshot");
  });

  describe("through the live stream", () => {
    let stack: Stack;
    before(async () => {
      stack = await startStack({ workers: 0 });
      // A page that connects before the web has its broker would hear nothing until then.
      await waitFor("the web's broker", async () => (await stack.http().get("/readyz")).status === 200);
    });
    after(async () => {
      await stack?.stop();
    });

    test(
      "when a browser comes back more than 256 KB of events behind, then it gets a snapshot and keeps its stream, instead of being cut off every 2 s",
      { timeout: 60_000 },
      async () => {
        const watching = listen(`${stack.url}/events`); // another page keeps the web hearing events
        const leaving = listen(`${stack.url}/events`);
        let coming: ReturnType<typeof listen> | undefined;
        try {
          await waitFor("both snapshots", () => watching.lastEventId && leaving.lastEventId);
          const leftAt = leaving.lastEventId;
          leaving.close();
          await publishEvents(
            stack,
            Array.from({ length: 6 }, () => ["task.photos", JSON.stringify(photosEvent(25))] as [string, string]),
          ); // ~52 KB each
          await waitFor(
            "the events to be heard",
            () => watching.events.filter((e) => e.type === "photos").length === 6,
          );

          // As the page does: the id it saw last, in the address (its first connect) or Last-Event-ID.
          coming = listen(`${stack.url}/events?lastEventId=${encodeURIComponent(leftAt)}`);
          await waitFor("the snapshot", () => coming!.events.some((e) => e.type === "snapshot"), 10_000);
          await new Promise((resolve) => setTimeout(resolve, 4500)); // two of a browser's reconnects
          assert.deepEqual([coming.opens, coming.errors], [1, 0], "one stream, never cut off");
          assert.ok(!coming.events.some((e) => e.type === "photos"), "no replay of what the snapshot holds");
          await publishEvents(stack, [["task.photos", JSON.stringify(photosEvent(1))]]);
          await waitFor("the next event", () => coming!.events.some((e) => e.type === "photos"));
        } finally {
          watching.close();
          leaving.close();
          coming?.close();
        }
      },
    );

    test(
      "when one event of 810 KB comes while a browser is away, then it is dropped, and the browser coming back gets the events after it",
      { timeout: 60_000 },
      async () => {
        const watching = listen(`${stack.url}/events`);
        let coming: ReturnType<typeof listen> | undefined;
        try {
          await waitFor("the snapshot", () => watching.lastEventId);
          const leftAt = watching.lastEventId;
          const huge = { ...photosEvent(1), padding: "x".repeat(810 * KiB) };
          await publishEvents(stack, [
            ["task.photos", JSON.stringify(huge)],
            ["task.photos", JSON.stringify(photosEvent(1))],
          ]);
          await waitFor("the small event to be heard", () => watching.events.some((e) => e.type === "photos"));
          coming = listen(`${stack.url}/events?lastEventId=${encodeURIComponent(leftAt)}`);
          await waitFor("the replay", () => coming!.events.some((e) => e.type === "photos"), 10_000);
          await new Promise((resolve) => setTimeout(resolve, 4500));
          assert.deepEqual([coming.opens, coming.errors], [1, 0], "one stream, never cut off");
          assert.deepEqual(
            coming.events.map((e) => e.type),
            ["photos"],
            "only the small event, replayed",
          );
          assert.ok(watching.largest < 128 * KiB && coming.largest < 128 * KiB);
        } finally {
          watching.close();
          coming?.close();
        }
      },
    );
  });
});

describe("forged heartbeats", () => {
  const beat = (id: string, more: Partial<Heartbeat> = {}): Heartbeat => ({
    ...{ id, host: "h", pid: 1, concurrency: 4, done: 0, failed: 0, skipped: 0, inFlight: 0 },
    ...{ startedAt: new Date().toISOString(), ready: true, paused: false, ...more },
  });

  test("when one worker id beats faster than a worker does, then a burst of 5 is taken, then one every 250 ms", () => {
    let now = 1_000_000;
    const workers = new WorkerRegistry(10_000, MAX_TRACKED_WORKERS, () => now);
    for (let done = 0; done < 50; done++) workers.heartbeat(beat("w", { done }));
    assert.equal(workers.list()[0]!.done, 4, "the first five");
    now += 100;
    workers.heartbeat(beat("w", { done: 100 }));
    assert.equal(workers.list()[0]!.done, 4, "too soon after them");
    now += 150;
    workers.heartbeat(beat("w", { done: 101 }));
    assert.equal(workers.list()[0]!.done, 101, "250 ms on");
  });

  test("when every worker tracked is alive, then a new id is turned away instead of pushing one out; once one goes silent, a new one takes its place", () => {
    let now = 1_000_000;
    const workers = new WorkerRegistry(10_000, 3, () => now);
    workers.heartbeat(beat("real"));
    now += 1000;
    for (const id of ["fake-1", "fake-2", "fake-3", "fake-4"]) workers.heartbeat(beat(id));
    assert.deepEqual(
      workers.list().map((w) => w.id),
      ["fake-1", "fake-2", "real"],
    );
    now += 9500; // the real worker beats on; the fakes fall silent
    workers.heartbeat(beat("real"));
    now += 1000;
    workers.heartbeat(beat("late"));
    assert.deepEqual(
      workers.list().map((w) => [w.id, w.status]),
      [
        ["late", "alive"],
        ["real", "alive"],
        ["fake-2", "lost"],
      ],
    );
  });

  test("when a heartbeat claims more jobs than its concurrency, or a concurrency no worker may have, then it is dropped", () => {
    for (const more of [
      { inFlight: 5 },
      { concurrency: 100_000, inFlight: 100_000 },
      { concurrency: 0 },
      { concurrency: 1025 },
    ]) {
      assert.equal(parseHeartbeat(beat("w", more)), undefined, JSON.stringify(more));
    }
    assert.ok(parseHeartbeat(beat("w", { concurrency: 1024, inFlight: 1024 })));
  });

  describe("on the events exchange, ~480 a second", () => {
    let stack: Stack;
    before(async () => {
      stack = await startStack({ workers: 1 });
    });
    after(async () => {
      await stack?.stop();
    });

    test(
      "then the monitor shows the real worker in every look, and no more jobs held than the broker's consumers can hold",
      { timeout: 60_000 },
      async () => {
        const realId = stack.workers[0]!.id;
        await waitFor("the real worker", async () =>
          (await stack.http().get("/api/workers")).body.workers.some((w: { id: string }) => w.id === realId),
        );
        const looks: { real: boolean; listed: number; unacked: number; consumers: number }[] = [];
        const forger = await forgeEvents(stack.config.queueName);
        try {
          const flood = (async () => {
            // 48 every 100 ms for 4 s, each a new worker: half claim 100,000 jobs each, half the most a worker may
            // hold.
            for (let batch = 0; batch < 40; batch++) {
              for (let i = 0; i < 48; i++) {
                const n = batch * 48 + i;
                const load =
                  n % 2 ? { concurrency: 100_000, inFlight: 100_000 } : { concurrency: 1024, inFlight: 1024 };
                forger.publish("worker.heartbeat", JSON.stringify({ ...beat(`fake-${n}`, load), pid: n + 1 }));
              }
              await forger.confirmed();
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
          })();
          flood.catch(() => {}); // awaited below, unless a look fails first
          for (let look = 0; look < 4; look++) {
            await new Promise((resolve) => setTimeout(resolve, 1000));
            const { workers } = (await stack.http().get("/api/workers").expect(200)).body as {
              workers: { id: string }[];
            };
            const queue = (await stack.http().get("/api/queue").expect(200)).body as {
              unacked: number;
              consumers: number;
            };
            looks.push({
              real: workers.some((w) => w.id === realId),
              listed: workers.length,
              unacked: queue.unacked,
              consumers: queue.consumers,
            });
          }
          await flood;
        } finally {
          await forger.close();
        }
        const summary = JSON.stringify(looks);
        console.log(`~480 forged heartbeats a second, four looks: ${summary}`);
        assert.ok(
          looks.every((l) => l.real),
          `the real worker in every look: ${summary}`,
        );
        assert.ok(
          looks.every((l) => l.listed <= MAX_TRACKED_WORKERS),
          summary,
        );
        assert.ok(
          looks.every((l) => l.unacked <= l.consumers * 1024),
          `jobs held: ${summary}`,
        );
      },
    );
  });
});

describe("forged heartbeats with a control key configured", () => {
  const SECRET = "a shared secret of at least 32 characters";
  const otherKey = controlKey({ controlSecret: "someone else's secret, 32 characters or more" })!;
  const beat = (id: string, more: Partial<Heartbeat> = {}): Heartbeat => ({
    ...{ id, host: "h", pid: 1, concurrency: 4, done: 0, failed: 0, skipped: 0, inFlight: 0 },
    ...{ startedAt: new Date().toISOString(), ready: true, paused: false, ...more },
  });
  type Listed = { id: string; status: string; done: number; paused: boolean };
  let stack: Stack;
  const listed = async (): Promise<Listed[]> => (await stack.http().get("/api/workers").expect(200)).body.workers;
  before(async () => {
    stack = await startStack({ workers: 1, env: { CONTROL_SECRET: SECRET } });
    await waitFor("the first worker listed", async () => (await listed()).some((w) => w.id === stack.workers[0]!.id));
  });
  after(() => stack?.stop());

  test("when someone sends a goodbye or heartbeats with a real worker's id, unsigned or signed with another key, then the monitor still shows what the worker says", async () => {
    const realId = stack.workers[0]!.id;
    const lies = beat(realId, { done: 999_999, paused: true });
    await publishEvents(stack, [
      ["worker.offline", JSON.stringify({ ...lies, ready: false })],
      ["worker.offline", JSON.stringify(signHeartbeat(otherKey, "worker.offline", { ...lies, ready: false }))],
      ["worker.heartbeat", JSON.stringify(lies)],
      ["worker.heartbeat", JSON.stringify(signHeartbeat(otherKey, "worker.heartbeat", lies))],
    ]);
    for (let look = 0; look < 4; look++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const real = (await listed()).find((w) => w.id === realId);
      assert.deepEqual(
        real && { status: real.status, paused: real.paused, lied: real.done === 999_999 },
        { status: "alive", paused: false, lied: false },
        `look ${look}`,
      );
    }
  });

  test(
    "when 200 made-up workers beat, unsigned or signed with another key, then a worker started meanwhile is listed and they are not",
    { timeout: 60_000 },
    async () => {
      const forger = await forgeEvents(stack.config.queueName);
      let flooding = true;
      const flood = (async () => {
        // All 200 places, every 500 ms (a worker's pace allows one per 250 ms), for at most 15 s.
        for (let round = 0; round < 30 && flooding; round++) {
          for (let n = 0; n < MAX_TRACKED_WORKERS; n++) {
            const fake = beat(`fake-${n}`, { pid: n + 1 });
            forger.publish(
              "worker.heartbeat",
              JSON.stringify(n % 2 ? signHeartbeat(otherKey, "worker.heartbeat", fake) : fake),
            );
          }
          await forger.confirmed();
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      })();
      flood.catch(() => {}); // awaited below
      try {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const late = await startWorker(stack.config, createLogger("silent", "test"));
        stack.workers.push(late);
        const seen = await waitFor(
          "the worker started during the flood",
          async () => ((await listed()).some((w) => w.id === late.id) ? listed() : undefined),
          8000,
        );
        assert.deepEqual(
          seen.map((w) => w.id).sort(),
          stack.workers.map((w) => w.id).sort(),
          "only the real workers are listed",
        );
      } finally {
        flooding = false;
        await flood;
        await forger.close();
      }
    },
  );
});

describe("heartbeats a web with a control key drops", () => {
  const queueName = `gendog.test.${randomBytes(4).toString("hex")}`;
  const retry = { baseMs: 50, maxMs: 400 };
  const key = controlKey({ adminPassword: "correct horse battery staple" })!;
  const lines: string[] = [];
  const broker = new Broker({ url: AMQP_URL, queueName, retry, logger: createLogger("silent", "test") });
  const workers = new WorkerRegistry();
  let relay: Awaited<ReturnType<typeof relayEvents>>;
  before(async () => {
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    relay = await relayEvents({ broker, hub: new EventHub(), workers, logger, key });
    const connected = new Promise<void>((resolve) => broker.onConnected(resolve));
    await broker.start();
    await connected; // the relay's queue is bound from here on
  });
  after(async () => {
    await relay.stop();
    await broker.close();
    await deleteQueues(queueName, retry);
  });

  test("when heartbeats come unsigned, signed with another key, stale, or signed as another kind, then each is dropped and counted in the log, and a signed one is taken", async () => {
    const beat = {
      id: "w",
      host: "h",
      pid: 1,
      concurrency: 1,
      done: 0,
      failed: 0,
      skipped: 0,
      inFlight: 0,
      startedAt: new Date().toISOString(),
      ready: true,
      paused: false,
    };
    const otherKey = controlKey({ controlSecret: "someone else's secret, 32 characters or more" })!;
    await forgeEventsOnce(queueName, [
      ["worker.heartbeat", JSON.stringify(beat)],
      ["worker.heartbeat", JSON.stringify(signHeartbeat(otherKey, "worker.heartbeat", beat))],
      ["worker.heartbeat", JSON.stringify(signHeartbeat(key, "worker.heartbeat", beat, Date.now() - 60_000))],
      ["worker.heartbeat", JSON.stringify(signHeartbeat(key, "worker.offline", beat))],
      ["worker.heartbeat", JSON.stringify({ ...signHeartbeat(key, "worker.heartbeat", beat), done: 1 })],
      ["worker.heartbeat", JSON.stringify(signHeartbeat(key, "worker.heartbeat", { ...beat, id: "signed" }))],
    ]);
    await waitFor("the signed one", () => workers.list().length > 0, 5000);
    assert.deepEqual(
      workers.list().map((w) => w.id),
      ["signed"],
    );
    await waitFor(
      "five drops logged",
      () =>
        droppedIn(lines.join("\n"), "dropped a heartbeat not signed with this web's control key, or not lately") === 5,
      15_000,
    );
  });
});

describe("heartbeats with no control key configured", () => {
  test("when a heartbeat comes unsigned, then it is taken, as before keys existed", async () => {
    const stack = await startStack({ workers: 1 });
    try {
      // The real worker's (unsigned) heartbeat heard first: the exchange is in place by then.
      await waitFor(
        "the real worker",
        async () => (await stack.http().get("/api/workers").expect(200)).body.workers.length === 1,
      );
      await publishEvents(stack, [["worker.heartbeat", JSON.stringify(heartbeat("plain-1"))]]);
      const ids = await waitFor("both listed", async () => {
        const { workers } = (await stack.http().get("/api/workers").expect(200)).body as { workers: { id: string }[] };
        return workers.length === 2 && workers.map((w) => w.id);
      });
      assert.deepEqual(ids.sort(), ["plain-1", stack.workers[0]!.id].sort());
    } finally {
      await stack.stop();
    }
  });
});

/** A valid photos event with this many photos, each with a link of ~2,000 characters. */
function photosEvent(photos: number) {
  return {
    type: "photos" as const,
    taskId: randomUUID(),
    photos: Array.from({ length: photos }, (_, i) => ({
      id: i + 1,
      url: `https://images.dog.ceo/breeds/pug/${"x".repeat(1990)}.jpg`,
      breed: "pug",
      subBreed: null,
      label: "Pug",
      createdAt: new Date().toISOString(),
    })),
  };
}
