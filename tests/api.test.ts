// The JSON API, endpoint by endpoint, on the real stack: what a caller gets back, what
// the database holds, and what the broker reports.
import { randomUUID } from "node:crypto";
import os from "node:os";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Response } from "supertest";
import { publishRaw, queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const FINISHED = ["SUCCESS", "FAILURE", "REVOKED"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Every API error is JSON shaped {error: {code, message[, field]}}. */
function assertApiError(res: Response, status: number, code: string, field?: string) {
  assert.equal(res.status, status, `status of ${res.text}`);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  assert.deepEqual(Object.keys(res.body), ["error"]);
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, "string");
  assert.ok(res.body.error.message.length > 0);
  if (field !== undefined) assert.equal(res.body.error.field, field);
}

async function submit(stack: Stack, body: Record<string, unknown>): Promise<string> {
  const res = await stack.http().post("/api/tasks").send(body).expect(202);
  return res.body.id as string;
}

async function submitAndFinish(stack: Stack, body: Record<string, unknown>): Promise<string> {
  const id = await submit(stack, body);
  assert.equal((await waitForTaskState(stack.db, id, FINISHED)).state, "SUCCESS");
  return id;
}

/** Follows nextCursor from the first page to the last, returning every page. */
async function allPages<T>(stack: Stack, path: string, key: string): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res: Response = await stack
      .http()
      .get(`${path}${cursor ? `${sep}cursor=${cursor}` : ""}`)
      .expect(200);
    pages.push(res.body[key]);
    cursor = res.body.nextCursor;
    assert.ok(pages.length <= 20, "pagination ends");
  } while (cursor !== null);
  return pages;
}

describe("the JSON API", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  describe("POST /api/tasks", () => {
    test("when a valid task is posted, then it answers 202 with the task, a Location, and the job is queued", async () => {
      const res = await stack
        .http()
        .post("/api/tasks")
        .send({ breed: "hound", subBreed: "afghan", limit: 2 })
        .expect(202);
      assert.match(res.body.id, UUID);
      assert.equal(res.headers.location, `/api/tasks/${res.body.id}`);
      assert.equal(res.body.breed, "hound");
      assert.equal(res.body.subBreed, "afghan");
      assert.equal(res.body.limit, 2);
      assert.equal(res.body.queued, true);
      assert.equal(res.body.waitingForQueue, false);
      assert.ok(["PENDING", "STARTED", "SUCCESS"].includes(res.body.state), res.body.state);
      assert.ok(res.body.queuedAt, "the broker confirmed it");

      const row = await stack.db.task.findUniqueOrThrow({ where: { id: res.body.id } });
      assert.equal(row.breed, "hound");
      assert.equal(row.subBreed, "afghan");
      const outbox = await stack.db.outboxMessage.findFirstOrThrow({ where: { taskId: res.body.id } });
      assert.ok(outbox.sentAt);
      assert.deepEqual(JSON.parse(outbox.body), { taskId: res.body.id, breed: "hound", subBreed: "afghan", limit: 2 });

      const followed = await stack.http().get(res.headers.location!).expect(200);
      assert.equal(followed.body.task.id, res.body.id);
      assert.equal((await waitForTaskState(stack.db, res.body.id, FINISHED)).state, "SUCCESS");
    });

    test("when the body is invalid, then it answers 400 naming the field and creates nothing", async () => {
      const before = await stack.db.task.count();
      const cases: [Record<string, unknown>, string][] = [
        [{ limit: 3 }, "breed"],
        [{ breed: "nope", limit: 3 }, "breed"],
        [{ breed: "hound", subBreed: "nope", limit: 3 }, "breed"],
        [{ breed: "Hound!", limit: 3 }, "breed"],
        [{ breed: "pug" }, "limit"],
        [{ breed: "pug", limit: "5" }, "limit"],
        [{ breed: "pug", limit: 0 }, "limit"],
        [{ breed: "pug", limit: 51 }, "limit"],
        [{ breed: "pug", limit: 2.5 }, "limit"],
      ];
      for (const [body, field] of cases) {
        assertApiError(await stack.http().post("/api/tasks").send(body), 400, "invalid_input", field);
      }
      assert.equal(await stack.db.task.count(), before);
    });

    test("when the body is not JSON, then it answers 415 or 400 and creates nothing", async () => {
      const before = await stack.db.task.count();
      assertApiError(
        await stack.http().post("/api/tasks").type("form").send({ breed: "pug", limit: "3" }),
        415,
        "unsupported_media_type",
      );
      assertApiError(
        await stack.http().post("/api/tasks").set("Content-Type", "application/json").send("{not json"),
        400,
        "invalid_json",
      );
      assertApiError(
        await stack
          .http()
          .post("/api/tasks")
          .send({ breed: "pug", limit: 3, pad: "x".repeat(5000) }),
        413,
        "too_large",
      );
      assert.equal(await stack.db.task.count(), before);
    });
  });

  describe("GET /api/tasks/:id", () => {
    test("when the task exists, then it answers with the task, its attempts and its photos", async () => {
      const id = await submitAndFinish(stack, { breed: "beagle", limit: 3 });
      const { body } = await stack.http().get(`/api/tasks/${id}`).expect(200).expect("Content-Type", /json/);
      assert.deepEqual(Object.keys(body).sort(), ["attempts", "heldBy", "job", "photos", "task"]);
      assert.equal(body.task.id, id);
      assert.equal(body.task.state, "SUCCESS");
      assert.equal(body.task.photoCount, 3);
      assert.equal(body.attempts.length, 1);
      assert.equal(body.attempts[0].outcome, "SUCCESS");
      assert.equal(body.attempts[0].workerId, stack.workers[0]!.id);
      const links = await stack.db.taskPhoto.findMany({
        where: { taskId: id },
        include: { photo: true },
        orderBy: { position: "asc" },
      });
      assert.deepEqual(
        body.photos.map((p: { url: string }) => p.url),
        links.map((l) => l.photo.url),
      );
    });

    test("when the task does not exist or the id is not a uuid, then it answers 404 JSON", async () => {
      assertApiError(await stack.http().get(`/api/tasks/${randomUUID()}`), 404, "not_found");
      assertApiError(await stack.http().get("/api/tasks/not-a-uuid"), 404, "not_found");
    });
  });

  describe("GET /api/tasks", () => {
    test("when there are more tasks than a page, then cursor pages list them newest first without overlap", async () => {
      const created: string[] = [];
      for (let i = 0; i < 5; i++) created.push(await submit(stack, { breed: "akita", limit: 1 }));
      const pages = await allPages<{ id: string }>(stack, "/api/tasks?breed=akita&limit=2", "tasks");
      assert.deepEqual(
        pages.map((p) => p.length),
        [2, 2, 1],
      );
      assert.deepEqual(
        pages.flat().map((t) => t.id),
        [...created].reverse(),
      );

      for (const id of created) await waitForTaskState(stack.db, id, FINISHED);
      const { body } = await stack.http().get("/api/tasks?breed=akita&state=SUCCESS").expect(200);
      assert.equal(body.tasks.length, 5);
      assert.equal(body.nextCursor, null);
      const none = await stack.http().get("/api/tasks?breed=akita&state=FAILURE").expect(200);
      assert.deepEqual(none.body, { tasks: [], nextCursor: null, prevCursor: null, total: 0, offset: 0 });
    });

    test("when tasks share a creation instant, then pages still neither overlap nor skip", async () => {
      const createdAt = new Date("2030-01-01T00:00:00.000Z");
      const ids = Array.from({ length: 5 }, () => randomUUID());
      for (const id of ids) await stack.db.task.create({ data: { id, breed: "boxer", limit: 1, createdAt } });
      const pages = await allPages<{ id: string }>(stack, "/api/tasks?breed=boxer&limit=2", "tasks");
      assert.deepEqual(
        pages.map((p) => p.length),
        [2, 2, 1],
      );
      assert.deepEqual(
        pages.flat().map((t) => t.id),
        [...ids].sort().reverse(),
      );
      // Tidy up: these rows have no job and would sit PENDING forever.
      await stack.db.task.deleteMany({ where: { id: { in: ids } } });
    });

    test("when the breed filter names a sub-breed, then only that sub-breed's tasks are listed", async () => {
      // Its own tasks: one of the sub-breed, and two of the same breed that must not show.
      const afghan = await submit(stack, { breed: "hound", subBreed: "afghan", limit: 1 });
      await submit(stack, { breed: "hound", subBreed: "basset", limit: 1 });
      await submit(stack, { breed: "hound", limit: 1 });
      const { body } = await stack.http().get("/api/tasks?breed=hound/afghan").expect(200);
      assert.ok(
        body.tasks.some((t: { id: string }) => t.id === afghan),
        "the afghan task is listed",
      );
      assert.ok(
        body.tasks.every((t: { breed: string; subBreed: string }) => t.breed === "hound" && t.subBreed === "afghan"),
      );
    });

    test("when a filter or page parameter is invalid, then it answers 400 naming it", async () => {
      assertApiError(await stack.http().get("/api/tasks?state=DONE"), 400, "invalid_input", "state");
      assertApiError(await stack.http().get("/api/tasks?state=success"), 400, "invalid_input", "state");
      for (const limit of ["0", "101", "abc", "1.5"]) {
        assertApiError(await stack.http().get(`/api/tasks?limit=${limit}`), 400, "invalid_input", "limit");
      }
      assertApiError(await stack.http().get("/api/tasks?cursor=42"), 400, "invalid_input", "cursor");
    });
  });

  describe("POST /api/tasks/:id/cancel", () => {
    test("when the task is pending, then it answers 200 with the task REVOKED", async () => {
      // A task with no job yet (no outbox row), so no worker can race the cancel.
      const id = randomUUID();
      await stack.db.task.create({ data: { id, breed: "pug", limit: 1 } });
      const { body } = await stack
        .http()
        .post(`/api/tasks/${id}/cancel`)
        .set("Content-Type", "application/json")
        .expect(200);
      assert.equal(body.id, id);
      assert.equal(body.state, "REVOKED");
      assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "REVOKED");
      assertApiError(
        await stack.http().post(`/api/tasks/${id}/cancel`).set("Content-Type", "application/json"),
        409,
        "conflict",
      );
    });

    test("when the task has finished, is unknown, or the id is not a uuid, then it answers 409 or 404", async () => {
      const id = await submitAndFinish(stack, { breed: "pug", limit: 1 });
      assertApiError(
        await stack.http().post(`/api/tasks/${id}/cancel`).set("Content-Type", "application/json"),
        409,
        "conflict",
      );
      assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "SUCCESS");
      assertApiError(
        await stack.http().post(`/api/tasks/${randomUUID()}/cancel`).set("Content-Type", "application/json"),
        404,
        "not_found",
      );
      assertApiError(
        await stack.http().post("/api/tasks/xyz/cancel").set("Content-Type", "application/json"),
        404,
        "not_found",
      );
    });
  });

  describe("GET /api/photos", () => {
    test("when filtered by task, then it lists exactly that task's photos", async () => {
      const id = await submitAndFinish(stack, { breed: "husky", limit: 7 });
      const { body } = await stack.http().get(`/api/photos?task=${id}`).expect(200);
      const links = await stack.db.taskPhoto.findMany({ where: { taskId: id }, include: { photo: true } });
      assert.deepEqual(body.photos.map((p: { url: string }) => p.url).sort(), links.map((l) => l.photo.url).sort());
      assert.equal(body.nextCursor, null);
      const unknown = await stack.http().get(`/api/photos?task=${randomUUID()}`).expect(200);
      assert.deepEqual(unknown.body.photos, []);
    });

    test("when there are more photos than a page, then cursor pages list them newest first without overlap", async () => {
      const pages = await allPages<{ id: number; breed: string }>(stack, "/api/photos?breed=husky&limit=3", "photos");
      assert.deepEqual(
        pages.map((p) => p.length),
        [3, 3, 1],
      );
      const ids = pages.flat().map((p) => p.id);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => b - a),
      );
      assert.equal(new Set(ids).size, 7);
      assert.ok(pages.flat().every((p) => p.breed === "husky"));
      const stored = await stack.db.photo.findMany({ where: { breed: "husky" } });
      assert.deepEqual(
        stored.map((p) => p.id).sort((a, b) => b - a),
        ids,
      );
    });

    test("when the breed names a sub-breed, then only its photos are listed", async () => {
      const { body } = await stack.http().get("/api/photos?breed=hound/afghan").expect(200);
      assert.ok(body.photos.length >= 1);
      assert.ok(
        body.photos.every((p: { breed: string; subBreed: string }) => p.breed === "hound" && p.subBreed === "afghan"),
      );
    });

    test("when a page parameter is invalid, then it answers 400 naming it", async () => {
      assertApiError(await stack.http().get("/api/photos?cursor=abc"), 400, "invalid_input", "cursor");
      assertApiError(await stack.http().get("/api/photos?limit=0"), 400, "invalid_input", "limit");
      assertApiError(await stack.http().get("/api/photos?limit=201"), 400, "invalid_input", "limit");
    });
  });

  describe("GET /api/queue and GET /api/workers", () => {
    test("when the broker is up, then the queue overview reports its numbers and the worker consuming", async () => {
      // Something to count: a dead letter of its own (the numbers are not all zero by chance).
      const deadBefore = await queueDepth(`${stack.config.queueName}.dead`);
      await publishRaw(
        `${stack.config.queueName}.dead`,
        JSON.stringify({ taskId: "00000000-0000-4000-8000-000000000000" }),
      );
      const body = await waitFor(
        "the overview to count the dead letter",
        async () => {
          const res = await stack.http().get("/api/queue").expect(200);
          return res.body.dead === deadBefore + 1 ? res.body : undefined;
        },
        5000,
      );
      assert.equal(body.broker.connected, true);
      assert.equal(body.queue, stack.config.queueName);
      for (const key of ["ready", "unacked", "consumers", "retrying", "dead", "waitingInOutbox"]) {
        assert.equal(typeof body[key], "number", key);
      }
      assert.ok(body.consumers >= 1);
      assert.equal(body.ready, await queueDepth(stack.config.queueName));
      assert.equal(body.dead, await queueDepth(`${stack.config.queueName}.dead`));
      assert.equal(body.waitingInOutbox, await stack.db.outboxMessage.count({ where: { sentAt: null } }));
    });

    test("when a worker has sent a heartbeat, then it is listed as alive with its identity and counters", async () => {
      const worker = stack.workers[0]!;
      const listed = await waitFor(
        "the worker's heartbeat",
        async () => {
          const { body } = await stack.http().get("/api/workers").expect(200);
          return body.workers.length > 0 ? body.workers : undefined;
        },
        6000,
      );
      assert.equal(listed.length, 1);
      const [view] = listed;
      assert.equal(view.id, worker.id);
      assert.equal(view.host, os.hostname());
      assert.equal(view.pid, process.pid);
      assert.equal(view.concurrency, stack.config.workerConcurrency);
      assert.equal(typeof view.done, "number");
      assert.equal(typeof view.failed, "number");
      assert.ok(view.done <= worker.counters.done);
      assert.equal(view.alive, true);
      assert.ok(Math.abs(Date.parse(view.lastSeen) - Date.now()) < 5000, view.lastSeen);
    });
  });

  describe("GET /api/breeds and unknown endpoints", () => {
    test("when the breeds are asked for, then dog.ceo's list is returned", async () => {
      const { body } = await stack.http().get("/api/breeds").expect(200);
      assert.ok(body.breeds);
      assert.ok(JSON.stringify(body.breeds).includes("afghan"));
    });

    test("when an endpoint does not exist, then it answers 404 JSON", async () => {
      assertApiError(await stack.http().get("/api/nope"), 404, "not_found");
      assertApiError(await stack.http().post("/api/nope").send({}), 404, "not_found");
      assertApiError(await stack.http().delete("/api/tasks"), 404, "not_found");
    });
  });

  describe("DELETE /api/photos", () => {
    test("when the gallery is cleared, then every photo is deleted and the tasks are kept", async () => {
      const photos = await stack.db.photo.count();
      const tasks = await stack.db.task.count();
      assert.ok(photos > 0);
      const anyTask = await stack.db.task.findFirstOrThrow({ where: { state: "SUCCESS" } });

      const { body } = await stack.http().delete("/api/photos").set("Content-Type", "application/json").expect(200);
      assert.deepEqual(body, { deleted: photos });

      assert.equal(await stack.db.photo.count(), 0);
      assert.equal(await stack.db.taskPhoto.count(), 0);
      assert.equal(await stack.db.task.count(), tasks);
      assert.deepEqual((await stack.http().get("/api/photos").expect(200)).body, { photos: [], nextCursor: null });
      const detail = (await stack.http().get(`/api/tasks/${anyTask.id}`).expect(200)).body;
      assert.equal(detail.task.state, "SUCCESS");
      assert.deepEqual(detail.photos, []);
      assert.deepEqual(
        (await stack.http().delete("/api/photos").set("Content-Type", "application/json").expect(200)).body,
        { deleted: 0 },
      );
    });
  });
});

describe("the JSON API with two workers", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 2 });
  });
  after(async () => {
    await stack?.stop();
  });

  test("when two workers run, then both are listed and both consume the queue", async () => {
    const listed = await waitFor(
      "both workers' heartbeats",
      async () => {
        const { body } = await stack.http().get("/api/workers").expect(200);
        return body.workers.length === 2 ? body.workers : undefined;
      },
      6000,
    );
    assert.deepEqual(listed.map((w: { id: string }) => w.id).sort(), stack.workers.map((w) => w.id).sort());
    assert.ok(listed.every((w: { alive: boolean }) => w.alive));
    const { body } = await stack.http().get("/api/queue").expect(200);
    assert.equal(body.consumers, 2);
  });
});
