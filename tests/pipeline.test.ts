// What an outsider controls cannot decide what a worker stores: not dog.ceo's reply (how
// many links, how long), and not the job message (the task row is the truth).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { publishRaw, startStack, waitForTaskState, type Stack } from "./support/stack.ts";

/** A dog.ceo that answers every image-list call with `links(origin)`, whatever was asked. */
async function floodingDogApi(links: (origin: string) => string[]) {
  const server = http.createServer((req, res) => {
    const origin = `http://${req.headers.host}`;
    const body = req.url?.includes("/images")
      ? { message: links(origin), status: "success" }
      : { message: { hound: [], pug: [] }, status: "success" };
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `${origin}/api`, origin, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe("when dog.ceo answers 28,000 links, one of them 100 KB long, for a task of limit 3", () => {
  let stack: Stack;
  let dog: Awaited<ReturnType<typeof floodingDogApi>>;
  before(async () => {
    dog = await floodingDogApi((origin) => [
      // Short links, so the whole reply stays under the client's 1 MiB cap.
      `${origin}/${"x".repeat(100_000)}`,
      ...Array.from({ length: 28_000 }, (_, i) => `${origin}/${i}`),
    ]);
    stack = await startStack({ env: { DOG_API_URL: dog.url } });
  });
  after(async () => {
    await stack.stop();
    await dog.close();
  });

  test("then 3 photos of ordinary length are stored and submits keep answering meanwhile", async () => {
    const first = await stack.http().post("/api/tasks").send({ breed: "hound", limit: 3 }).expect(202);
    const started = Date.now();
    for (let i = 0; i < 5; i++) await stack.http().post("/api/tasks").send({ breed: "hound", limit: 3 }).expect(202);
    assert.ok(Date.now() - started < 5000, "submits answered promptly");
    const task = await waitForTaskState(stack.db, first.body.id, ["SUCCESS", "FAILURE"]);
    assert.equal(task.state, "SUCCESS");
    assert.equal(task.photoCount, 3);
    const photos = await stack.db.photo.findMany({ where: { tasks: { some: { taskId: task.id } } } });
    assert.equal(photos.length, 3);
    assert.ok(
      photos.every((p) => p.url.length < 200),
      "no oversized link stored",
    );
    const detail = await stack.http().get(`/api/tasks/${task.id}`).expect(200);
    assert.ok(detail.text.length < 10_000, `task detail is ${detail.text.length} bytes`);
  });
});

describe("when a job message names a task but carries another breed and limit", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ web: false });
  });
  after(() => stack.stop());

  test("then the task runs with its own stored breed and limit", async () => {
    const id = randomUUID();
    await stack.db.task.create({ data: { id, breed: "pug", limit: 2 } });
    await publishRaw(stack.config.queueName, JSON.stringify({ taskId: id, breed: "hound", limit: 20 }), {
      "x-attempt": 1,
    });
    const task = await waitForTaskState(stack.db, id, ["SUCCESS", "FAILURE"]);
    assert.equal(task.state, "SUCCESS");
    assert.equal(task.breed, "pug");
    assert.equal(task.photoCount, 2);
    const photos = await stack.db.photo.findMany({ where: { tasks: { some: { taskId: id } } } });
    assert.deepEqual(
      photos.map((p) => p.breed),
      ["pug", "pug"],
    );
    assert.ok(
      photos.every((p) => p.url.includes("/pug/")),
      photos.map((p) => p.url).join(", "),
    );
  });
});
