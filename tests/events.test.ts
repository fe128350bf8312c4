// The live stream on /events (Server-Sent Events), read like a browser's EventSource
// does: a snapshot on connect, task and photo events as they happen, and replay of
// missed events on reconnect with Last-Event-ID.
import http from "node:http";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, waitForTaskState, type Stack } from "./support/stack.ts";

const WAIT_MS = 10_000;

interface Block {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
}

interface Stream {
  headers: http.IncomingHttpHeaders;
  blocks: Block[];
  /** The first block at or after `from` that matches, waiting up to WAIT_MS for it. */
  next(match: (block: Block) => boolean, from?: number): Promise<Block>;
  close(): void;
}

const open = new Set<http.ClientRequest>();

/** GETs /events and parses the text/event-stream as it arrives. */
function connect(url: string, headers: Record<string, string> = {}, path = "/events"): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { headers: { Accept: "text/event-stream", ...headers } });
    open.add(req);
    const close = () => {
      req.destroy();
      open.delete(req);
    };
    req.setTimeout(WAIT_MS * 2, close);
    req.once("error", reject);
    req.once("response", (res) => {
      const blocks: Block[] = [];
      const waiters = new Set<() => void>();
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const text = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const block: Block = {};
          for (const line of text.split("\n")) {
            if (line.startsWith(":")) continue; // a comment (keepalive)
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "id" || field === "event" || field === "retry") block[field] = value;
            else if (field === "data") block.data = block.data === undefined ? value : `${block.data}\n${value}`;
          }
          if (Object.keys(block).length > 0) blocks.push(block);
        }
        for (const wake of waiters) wake();
      });
      res.on("error", () => {});
      resolve({
        headers: res.headers,
        blocks,
        close,
        next(match, from = 0) {
          return new Promise((found, fail) => {
            const check = () => {
              const block = blocks.slice(from).find(match);
              if (!block) return false;
              clearTimeout(timer);
              waiters.delete(check);
              found(block);
              return true;
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(
                new Error(
                  `no matching event within ${WAIT_MS} ms; got ${JSON.stringify(blocks.slice(from).map((b) => b.event))}`,
                ),
              );
            }, WAIT_MS);
            if (!check()) waiters.add(check);
          });
        },
      });
    });
  });
}

const data = (block: Block) => JSON.parse(block.data ?? "null");
const isTaskEvent = (taskId: string) => (b: Block) => b.event === "task" && data(b).task.id === taskId;
const seq = (id: string | undefined) => Number(id?.split("-")[1]);
const RANK: Record<string, number> = { PENDING: 0, STARTED: 1, RETRY: 1, SUCCESS: 2, FAILURE: 2, REVOKED: 2 };

/** Submits a task while a stream watches, and returns what the stream saw up to its photos. */
async function watchTaskRun(stack: Stack) {
  const stream = await connect(stack.url);
  try {
    const snapshot = await stream.next((b) => b.event === "snapshot");
    const { body } = await stack
      .http()
      .post("/api/tasks")
      .send({ breed: "hound", subBreed: "afghan", limit: 4 })
      .expect(202);
    const taskId: string = body.id;
    const success = await stream.next((b) => isTaskEvent(taskId)(b) && data(b).task.state === "SUCCESS");
    const photos = await stream.next((b) => b.event === "photos" && data(b).taskId === taskId);
    const events = stream.blocks.filter((b) => b.event && b.event !== "snapshot");
    const created = stream.blocks.find(isTaskEvent(taskId))!;
    return {
      taskId,
      blocks: [...stream.blocks],
      snapshot,
      success,
      photos,
      events,
      created,
      after: events.slice(events.indexOf(created) + 1),
    };
  } finally {
    stream.close();
  }
}

/** A stack of its own for the describe block it is called in; streams left open are closed after. */
function useStack(started: (stack: Stack) => void) {
  let stack: Stack | undefined;
  before(async () => started((stack = await startStack({ workers: 1 }))));
  after(async () => {
    for (const req of open) req.destroy();
    open.clear();
    await stack?.stop();
  });
}

describe("the live event stream", () => {
  let stack: Stack;
  useStack((started) => (stack = started));

  test("when a browser connects, then it gets a retry hint and then a snapshot of the recent tasks", async () => {
    const { body: earlier } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    const stream = await connect(stack.url);
    try {
      assert.match(String(stream.headers["content-type"]), /^text\/event-stream/);
      assert.equal(stream.headers["cache-control"], "no-store");
      const snapshot = await stream.next((b) => b.event !== undefined);
      assert.deepEqual(stream.blocks[0], { retry: "2000" });
      assert.equal(stream.blocks[1], snapshot);
      assert.equal(snapshot.event, "snapshot");
      assert.match(snapshot.id ?? "", /^[0-9a-z]+-\d+$/);
      assert.equal(data(snapshot).type, "snapshot");
      assert.equal(data(snapshot).tasks[0]?.id, earlier.id, "the newest task first");
    } finally {
      stream.close();
    }
  });

  test("when a task runs, then the stream tells its states in order and its photos", async () => {
    const { taskId, blocks, snapshot, success, photos, events, after } = await watchTaskRun(stack);
    const states = blocks.filter(isTaskEvent(taskId)).map((b) => data(b).task.state as string);
    assert.equal(states[0], "PENDING", `created as PENDING: ${states}`);
    assert.ok(states.includes("STARTED"), `went through STARTED: ${states}`);
    assert.equal(states.at(-1), "SUCCESS");
    const ranks = states.map((s) => RANK[s]!);
    assert.deepEqual(
      ranks,
      [...ranks].sort((a, b) => a - b),
      `states never go back: ${states}`,
    );
    assert.equal(data(success).task.photoCount, 4);

    const links = await stack.db.taskPhoto.findMany({
      where: { taskId },
      include: { photo: true },
      orderBy: { position: "asc" },
    });
    assert.deepEqual(
      data(photos).photos.map((p: { url: string }) => p.url),
      links.map((l) => l.photo.url),
    );
    assert.equal((await waitForTaskState(stack.db, taskId, ["SUCCESS"])).photoCount, 4);

    // Ids share the process's epoch and grow one by one after the snapshot's.
    const epoch = snapshot.id!.split("-")[0];
    assert.ok(events.every((b) => b.id!.split("-")[0] === epoch));
    assert.deepEqual(
      events.map((b) => seq(b.id)),
      events.map((_, i) => seq(snapshot.id) + i + 1),
    );
    assert.ok(after.length >= 3, "more events followed the first");
  });

  test("when a browser reconnects with Last-Event-ID, then it gets the events after that one and no snapshot", async () => {
    const seen = await watchTaskRun(stack);
    const last = seen.after.at(-1)!;
    // The header, as EventSource sends it; the query string, for clients that cannot set headers.
    const ways: [Record<string, string>, string][] = [
      [{ "Last-Event-ID": seen.created.id! }, "/events"],
      [{}, `/events?lastEventId=${encodeURIComponent(seen.created.id!)}`],
    ];
    for (const [headers, path] of ways) {
      const stream = await connect(stack.url, headers, path);
      try {
        await stream.next((b) => b.id === last.id);
        const replayed = stream.blocks.filter((b) => b.event !== undefined);
        assert.ok(!replayed.some((b) => b.event === "snapshot"), "no snapshot on a good Last-Event-ID");
        assert.deepEqual(replayed.slice(0, seen.after.length), seen.after);
      } finally {
        stream.close();
      }
    }
  });

  test("when Last-Event-ID is unknown or from another process, then the browser gets a fresh snapshot", async () => {
    const seen = await watchTaskRun(stack);
    for (const lastEventId of ["zzz-5", "garbage", `${seen.created.id!.split("-")[0]}-999999`]) {
      const stream = await connect(stack.url, { "Last-Event-ID": lastEventId });
      try {
        const first = await stream.next((b) => b.event !== undefined);
        assert.equal(first.event, "snapshot", `for ${lastEventId}`);
        const task = data(first).tasks.find((t: { id: string }) => t.id === seen.taskId);
        assert.equal(task?.state, "SUCCESS");
      } finally {
        stream.close();
      }
    }
  });

  test("when the gallery is cleared, then the stream says how many photos went", async () => {
    await watchTaskRun(stack);
    const stream = await connect(stack.url);
    try {
      await stream.next((b) => b.event === "snapshot");
      const count = await stack.db.photo.count();
      assert.ok(count > 0);
      await stack.http().delete("/api/photos").set("Content-Type", "application/json").expect(200);
      const cleared = await stream.next((b) => b.event === "photos-cleared");
      assert.deepEqual(data(cleared), { type: "photos-cleared", deleted: count });
    } finally {
      stream.close();
    }
  });
});

// Task events no page hears are returned by the broker, and their makers go quiet for a
// while (each one costs the broker and the worker about as much as the job itself).
describe("task events while no page is open", () => {
  let stack: Stack;
  useStack((started) => (stack = started));

  test("when a page opens after tasks ran unwatched, then it hears the next task's states at once", async () => {
    // Nobody watches: the worker's events for this task come back unheard, and it goes quiet.
    const { body: unwatched } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    await waitForTaskState(stack.db, unwatched.id, ["SUCCESS"]);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the broker's return is back

    const stream = await connect(stack.url);
    try {
      await stream.next((b) => b.event === "snapshot");
      const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
      // It runs within the worker's quiet second, and is heard because the web told the worker
      // a page is open (without that, its events never come: the task is over when it ends).
      const started = await stream.next((b) => isTaskEvent(body.id)(b) && data(b).task.state === "STARTED");
      const success = await stream.next((b) => isTaskEvent(body.id)(b) && data(b).task.state === "SUCCESS");
      assert.ok(stream.blocks.indexOf(started) < stream.blocks.indexOf(success));
      assert.equal(
        stream.blocks.filter((b) => b.event === "resync").length,
        0,
        "the page is not made to redraw for nothing",
      );
    } finally {
      stream.close();
    }
  });
});
