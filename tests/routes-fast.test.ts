// The routes' contracts as a browser or API caller sees them, on createApp with fakes
// (tests/support/fakes.ts): a real database file, no RabbitMQ, no worker, no dog.ceo. It runs
// in seconds; what the real parts do together is the other suites' work.
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Response } from "supertest";
import { heartbeat, startFakeApp, withPing, type FakeApp } from "./support/fakes.ts";
import { csrfTokenFrom } from "./support/pages.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const json = { "Content-Type": "application/json" };
const PASSWORD = "correct horse battery staple";
const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;

/** Every API error is {error: {code, message, requestId[, field]}}. */
function assertApiError(res: Response, status: number, code: string, field?: string) {
  assert.equal(res.status, status, `status of ${res.text}`);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  assert.equal(res.body.error.code, code);
  assert.ok(res.body.error.message.length > 0);
  if (field !== undefined) assert.equal(res.body.error.field, field);
}

/** Posts the home page's form as a browser does: the page first (cookies, token), then the form. */
async function postForm(app: FakeApp, fields: Record<string, string>) {
  const agent = app.agent();
  const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
  return {
    agent,
    res: await agent
      .post("/tasks")
      .type("form")
      .send({ ...fields, _csrf: token }),
  };
}

describe("the home page and its form", () => {
  let app: FakeApp;
  before(async () => {
    app = await startFakeApp();
  });
  after(() => app?.stop());

  test("when someone opens the home page, then it shows the form with every breed and a form token", async () => {
    const res = await app.http().get("/").expect(200);
    assert.match(String(res.headers["content-type"]), /^text\/html/);
    assert.match(res.text, /<select name="breed"/);
    for (const breed of ["hound", "hound/afghan", "hound/basset", "pug", "husky"])
      assert.match(res.text, new RegExp(`<option value="${breed}"`));
    assert.ok(csrfTokenFrom(res.text));
  });

  test("when the form names a breed dog.ceo does not have, then it comes back at / with the choice kept, the error beside the field, and nothing sent", async () => {
    const before = app.dispatcher.jobs.length;
    const { agent, res } = await postForm(app, { breed: "unicorn", limit: "3" });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, "/?breed=unicorn&limit=3");

    const page = await agent.get(res.headers.location!).expect(200);
    assert.match(page.text, /data-error-for="breed">dog\.ceo has no breed &quot;unicorn&quot;\./);
    assert.match(page.text, /name="limit" id="limit"[^>]*value="3"/);
    assert.equal(app.dispatcher.jobs.length, before);
    assert.equal(await app.db.task.count({ where: { breed: "unicorn" } }), 0);
  });

  test("when the form asks for more photos than allowed, then the limit field says so and keeps what was typed", async () => {
    const { agent, res } = await postForm(app, { breed: "pug", limit: "500" });
    assert.equal(res.status, 303);
    const page = await agent.get(res.headers.location!).expect(200);
    assert.match(page.text, /data-error-for="limit"/);
    assert.doesNotMatch(page.text, /data-error-for="breed"/);
    assert.match(page.text, /name="limit" id="limit"[^>]*value="500"/);
  });

  test("when the form comes without its token, then it is refused 403 and nothing is saved", async () => {
    const res = await app.http().post("/tasks").type("form").send({ breed: "pug", limit: "2" });
    assert.equal(res.status, 403);
    assert.match(res.text, /This form has expired or did not come from GenDog/);
    assert.equal(await app.db.task.count({ where: { breed: "pug", limit: 2 } }), 0);
  });

  test("when a valid form is sent, then it answers 303 to the page's banner and the dispatcher gets the saved task's job", async () => {
    const before = app.dispatcher.jobs.length;
    const { agent, res } = await postForm(app, { breed: "hound/afghan", limit: "4" });
    assert.equal(res.status, 303);
    const id = /^\/\?submitted=(.+)$/.exec(res.headers.location ?? "")?.[1];
    assert.match(id ?? "", UUID);

    const sent = app.dispatcher.jobs.slice(before);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.taskId, id);
    assert.deepEqual(JSON.parse(sent[0]!.body), { taskId: id, breed: "hound", subBreed: "afghan", limit: 4 });
    const row = await app.db.task.findUniqueOrThrow({ where: { id } });
    assert.deepEqual([row.breed, row.subBreed, row.limit, row.state], ["hound", "afghan", 4, "PENDING"]);

    app.workers.heartbeat(heartbeat("worker-home-1"));
    const page = await agent.get(res.headers.location!).expect(200);
    assert.match(page.text, new RegExp(`Fetching 4 × hound \\(afghan\\) \\(task ${id!.slice(0, 8)}\\)…`));
  });
});

describe("a submit while the database does not answer", () => {
  let app: FakeApp;
  before(async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    app = await startFakeApp({
      change: (deps) => ({
        ...deps,
        tasks: { ...deps.tasks, lifecycle: { ...deps.tasks.lifecycle, accept: () => Promise.reject(refused) } },
      }),
    });
  });
  after(() => app?.stop());

  test("when the form is sent, then it comes back 503 with Retry-After and the choice kept, and nothing is dispatched", async () => {
    const { res } = await postForm(app, { breed: "husky", limit: "7" });
    assert.equal(res.status, 503);
    assert.equal(res.headers["retry-after"], "5");
    assert.match(res.text, /the task may not have been saved/);
    assert.match(res.text, /<option value="husky"[^>]*selected/);
    assert.match(res.text, /name="limit" id="limit"[^>]*value="7"/);
    assert.equal(app.dispatcher.jobs.length, 0);
  });

  test("when the API is called, then it answers 503 database_unavailable with Retry-After", async () => {
    const res = await app.http().post("/api/tasks").send({ breed: "husky", limit: 7 });
    assertApiError(res, 503, "database_unavailable");
    assert.equal(res.headers["retry-after"], "5");
  });
});

describe("the JSON API's tasks", () => {
  let app: FakeApp;
  before(async () => {
    app = await startFakeApp();
  });
  after(() => app?.stop());

  test("when a valid task is posted, then it answers 202 with the task and its Location, and the dispatcher gets its job", async () => {
    const res = await app.http().post("/api/tasks").send({ breed: "hound", subBreed: "basset", limit: 2 }).expect(202);
    assert.match(res.body.id, UUID);
    assert.equal(res.headers.location, `/api/tasks/${res.body.id}`);
    assert.deepEqual(
      [res.body.breed, res.body.subBreed, res.body.label, res.body.limit, res.body.state],
      ["hound", "basset", "hound (basset)", 2, "PENDING"],
    );
    assert.equal(res.body.queued, true);
    assert.equal(res.body.waitingForQueue, false);
    assert.ok(res.body.queuedAt, "queued at the dispatcher's confirm");
    assert.ok(app.dispatcher.jobs.some((job) => job.taskId === res.body.id));
  });

  test("when a task names an unknown breed or a bad limit, then it answers 400 invalid_input naming the field", async () => {
    assertApiError(
      await app.http().post("/api/tasks").send({ breed: "unicorn", limit: 2 }),
      400,
      "invalid_input",
      "breed",
    );
    assertApiError(
      await app.http().post("/api/tasks").send({ breed: "pug", limit: "2" }),
      400,
      "invalid_input",
      "limit",
    );
    assertApiError(await app.http().post("/api/tasks").send({ breed: "pug", limit: 0 }), 400, "invalid_input", "limit");
  });

  test("when a task is posted as anything but JSON, then it answers 415 and nothing is saved", async () => {
    const before = await app.db.task.count();
    assertApiError(
      await app.http().post("/api/tasks").type("form").send({ breed: "pug", limit: "2" }),
      415,
      "unsupported_media_type",
    );
    assertApiError(await app.http().post("/api/tasks").set(json).send("{not json"), 400, "invalid_json");
    assert.equal(await app.db.task.count(), before);
  });

  test("when the tasks are listed, then each has its view's fields and the list says where the next page starts", async () => {
    const { body: posted } = await app.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    const res = await app.http().get("/api/tasks?limit=1").expect(200);
    assert.deepEqual(Object.keys(res.body).sort(), ["nextCursor", "offset", "prevCursor", "tasks", "total"]);
    assert.equal(res.body.tasks.length, 1);
    assert.equal(res.body.tasks[0].id, posted.id, "newest first");
    for (const field of [
      "id",
      "breed",
      "subBreed",
      "label",
      "limit",
      "state",
      "createdAt",
      "queuedAt",
      "cancellable",
      "retriable",
    ])
      assert.ok(field in res.body.tasks[0], field);
    assert.equal(typeof res.body.nextCursor, "string");
    assert.equal(
      (await app.http().get(`/api/tasks?limit=1&cursor=${res.body.nextCursor}`).expect(200)).body.tasks.length,
      1,
    );
  });

  test("when one task is asked for, then it comes with its job, attempts and photos", async () => {
    const { body: posted } = await app.http().post("/api/tasks").send({ breed: "husky", limit: 3 }).expect(202);
    const res = await app.http().get(`/api/tasks/${posted.id}`).expect(200);
    assert.deepEqual(Object.keys(res.body).sort(), ["attempts", "heldBy", "job", "photos", "task"]);
    assert.equal(res.body.task.id, posted.id);
    assert.deepEqual(JSON.parse(res.body.job.body), { taskId: posted.id, breed: "husky", limit: 3 });
    assert.deepEqual([res.body.attempts, res.body.photos, res.body.heldBy], [[], [], null]);
  });

  test("when a task that does not exist is asked for, then it answers 404 not_found, whether the id is a UUID or not", async () => {
    assertApiError(await app.http().get(`/api/tasks/${randomUUID()}`), 404, "not_found");
    assertApiError(await app.http().get("/api/tasks/not-a-task"), 404, "not_found");
    assertApiError(await app.http().get("/api/no-such-endpoint"), 404, "not_found");
  });

  test("when the breeds, workers and queue are asked for, then they answer what the fakes hold", async () => {
    assert.deepEqual((await app.http().get("/api/breeds").expect(200)).body.breeds.hound, ["afghan", "basset"]);
    app.workers.heartbeat(heartbeat("worker-a"));
    const workers = (await app.http().get("/api/workers").expect(200)).body.workers;
    assert.deepEqual(
      workers.map((w: { id: string; status: string }) => [w.id, w.status]),
      [["worker-a", "alive"]],
    );
    const queue = await app.http().get("/api/queue").expect(200);
    assert.deepEqual([queue.body.broker.connected, queue.body.ready, queue.body.consumers], [true, 0, 1]);
  });
});

describe("the monitor's pages", () => {
  let app: FakeApp;
  let taskId: string;
  before(async () => {
    app = await startFakeApp();
    taskId = (await app.http().post("/api/tasks").send({ breed: "pug", limit: 5 }).expect(202)).body.id;
    app.workers.heartbeat(heartbeat("worker-monitor-1"));
  });
  after(() => app?.stop());

  test("when someone opens /tasks, then it lists the tasks, the queue's numbers and the workers", async () => {
    const res = await app.http().get("/tasks").expect(200);
    assert.match(res.text, /<h1 class="title is-3">Tasks<\/h1>/);
    assert.match(res.text, new RegExp(`href="/tasks/${taskId}"`));
    assert.match(res.text, /data-queue-field="consumers">1</);
    assert.match(res.text, /worker-monitor-1/);
  });

  test("when the monitor's search names a state that does not exist, then it answers 400 with the search kept and the error beside the field", async () => {
    const res = await app.http().get("/tasks?state=bogus&breed=pug").expect(400);
    assert.match(res.text, /data-error-for="state"/);
    assert.match(res.text, /name="breed"[^>]*value="pug"/);
  });

  test("when a task's page is opened, then it shows the task; when the task does not exist, then a 404 page", async () => {
    const res = await app.http().get(`/tasks/${taskId}`).expect(200);
    assert.match(res.text, new RegExp(`Task ${taskId.slice(0, 8)}`));
    const missing = await app.http().get(`/tasks/${randomUUID()}`).expect(404);
    assert.match(String(missing.headers["content-type"]), /^text\/html/);
    assert.match(missing.text, /There is no task with that id\./);
  });

  test("when the broker is down, then the queue panel shows no numbers and /api/queue answers 503", async () => {
    app.broker.connected = false;
    try {
      const res = await app.http().get("/tasks").expect(200);
      assert.match(res.text, /data-queue-field="consumers">—</);
      assert.equal((await app.http().get("/api/queue")).status, 503);
    } finally {
      app.broker.connected = true;
    }
  });
});

describe("the monitor's actions with ADMIN_PASSWORD set", () => {
  let app: FakeApp;
  before(async () => {
    app = await startFakeApp({ env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(() => app?.stop());

  test("when an action comes without the password or with a wrong one, then it answers 401 asking for it, and nothing is done", async () => {
    for (const auth of [undefined, basic("wrong")]) {
      const call = app.http().post("/api/workers/pause").set(json);
      const res = await (auth ? call.set("Authorization", auth) : call).send({});
      assertApiError(res, 401, "unauthorized");
      assert.match(String(res.headers["www-authenticate"]), /^Basic realm="GenDog admin"/);
    }
    assert.deepEqual(app.broker.published, []);
  });

  test("when an action comes with the password, then it is done: the workers are told, signed", async () => {
    const res = await app
      .http()
      .post("/api/workers/pause")
      .set(json)
      .set("Authorization", basic(PASSWORD))
      .send({})
      .expect(202);
    assert.deepEqual(res.body, { action: "pause", worker: "all" });
    assert.deepEqual(
      app.broker.published.map((event) => event.routingKey),
      ["control.pause"],
    );
  });

  test("when a form action comes with its token but no password, then it answers 401 too; reading stays open", async () => {
    const agent = app.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const res = await agent.post("/queue/purge").type("form").send({ expected: "0", _csrf: token });
    assert.equal(res.status, 401);
    await app.http().get("/tasks").expect(200);
    await app.http().get("/api/audit").expect(200);
  });
});

describe("the monitor's actions without ADMIN_PASSWORD", () => {
  let app: FakeApp;
  before(async () => {
    app = await startFakeApp({ env: { CONTROL_SECRET: "a control secret of at least thirty-two characters" } });
  });
  after(() => app?.stop());

  test("when an action comes from this machine, then it is done", async () => {
    await app.http().post("/api/workers/resume").set(json).send({}).expect(202);
  });

  test("when an action comes through a proxy TRUST_PROXY does not name, then it answers 403 whatever the proxy says of the client", async () => {
    for (const [header, value] of [
      ["X-Forwarded-For", "127.0.0.1"],
      ["X-Real-IP", "127.0.0.1"],
      ["Forwarded", "for=127.0.0.1"],
    ] as const) {
      const res = await app.http().post("/api/workers/pause").set(json).set(header, value).send({});
      assertApiError(res, 403, "forbidden");
    }
    assert.deepEqual(
      app.broker.published.map((event) => event.routingKey),
      ["control.resume"],
    );
  });
});

describe("/healthz and /readyz", () => {
  test("when the database and broker answer, then both say so with 200", async () => {
    const app = await startFakeApp();
    try {
      assert.deepEqual((await app.http().get("/healthz").expect(200)).body, { status: "ok" });
      assert.deepEqual((await app.http().get("/readyz").expect(200)).body, {
        status: "ready",
        database: true,
        broker: true,
      });
    } finally {
      await app.stop();
    }
  });

  test("when the broker is down, then /readyz answers 503 naming it, with Retry-After, and /healthz still 200", async () => {
    const app = await startFakeApp();
    try {
      app.broker.connected = false;
      const res = await app.http().get("/readyz").expect(503);
      assert.equal(res.headers["retry-after"], "5");
      assert.deepEqual(res.body, { status: "unavailable", database: true, broker: false, down: ["broker"] });
      await app.http().get("/healthz").expect(200);
    } finally {
      await app.stop();
    }
  });

  test("when the database refuses, then /readyz answers 503 naming it", async () => {
    const app = await startFakeApp({
      change: (deps) => withPing(deps, () => Promise.reject(new Error("database is down"))),
    });
    try {
      const res = await app.http().get("/readyz").expect(503);
      assert.deepEqual(res.body, { status: "unavailable", database: false, broker: true, down: ["database"] });
    } finally {
      await app.stop();
    }
  });

  test("when the database is silent past DATABASE_TIMEOUT_MS, then /readyz answers 503 without waiting for it", async () => {
    const app = await startFakeApp({
      env: { DATABASE_TIMEOUT_MS: "100" },
      change: (deps) => withPing(deps, () => new Promise(() => {})),
    });
    try {
      const res = await app.http().get("/readyz").expect(503);
      assert.deepEqual(res.body.down, ["database"]);
    } finally {
      await app.stop();
    }
  });
});

describe("what matched nothing, and too many submits", () => {
  let app: FakeApp;
  before(async () => {
    app = await startFakeApp({ env: { RATE_LIMIT_PER_MINUTE: "2" } });
  });
  after(() => app?.stop());

  test("when a browser asks for a page that does not exist, then it gets the 404 page; an API caller gets JSON", async () => {
    const page = await app.http().get("/no/such/page").expect(404);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    assert.match(page.text, /Not found/);
    assert.match(page.text, /There is no page here\./);
    const api = await app.http().get("/no/such/page").set("Accept", "application/json");
    assertApiError(api, 404, "not_found");
    assert.ok(api.body.error.requestId, "the request's id, to find it in the log");
  });

  test("when a client posts more tasks than the limit, then it answers 429 with Retry-After, and the form goes back to / with the choice kept", async () => {
    await app.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    await app.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    const refused = await app.http().post("/api/tasks").send({ breed: "pug", limit: 1 });
    assertApiError(refused, 429, "rate_limited");
    const wait = Number(refused.headers["retry-after"]);
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${refused.headers["retry-after"]}`);
    assert.equal(refused.body.error.retryAfterSeconds, wait);
    assert.equal(app.dispatcher.jobs.length, 2);

    const { res } = await postForm(app, { breed: "husky", limit: "3" });
    assert.equal(res.status, 303);
    assert.ok(Number(res.headers["retry-after"]) >= 1);
    assert.match(res.headers.location ?? "", /^\/\?breed=husky&limit=3&limited=\d+$/);
    assert.equal(app.dispatcher.jobs.length, 2);
  });
});
