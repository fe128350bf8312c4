// Who may press the buttons, round three: only wrong or missing admin passwords count as
// guesses, the admin's browser (known by a cookie from an earlier success) passes a lockout
// of its address, X-Forwarded-For names the client only from TRUST_PROXY, and without
// ADMIN_PASSWORD the actions answer only clients on this machine.
import http from "node:http";
import os from "node:os";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import request from "supertest";
import { ConfigError, loadConfig } from "../lib/platform/config.ts";
import { startStack, type Stack } from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const basic = (password: string, user = "admin") => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const json = { "Content-Type": "application/json" };

/** A task that failed, as a retry by hand wants it; no worker runs here, so it stays as the test left it. */
async function failedTask(stack: Stack): Promise<string> {
  const id = crypto.randomUUID();
  await stack.db.task.create({ data: { id, breed: "pug", limit: 1, state: "FAILURE", error: "dog.ceo answered 500" } });
  return id;
}

/** Opens GET /events and resolves with its status; close() ends it. */
function openStream(base: string, headers: Record<string, string>): Promise<{ status: number; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      new URL("/events", base),
      { agent: false, headers: { accept: "text/event-stream", ...headers } },
      (res) => {
        res.resume();
        res.on("error", () => {});
        resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
      },
    );
    req.on("error", reject);
  });
}

describe("wrong guesses and the admin's own work", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(() => stack?.stop());

  test("when the admin's actions answer 404 and 409, then they are not wrong guesses and the admin is never made to wait", async () => {
    const pending = crypto.randomUUID();
    await stack.db.task.create({ data: { id: pending, breed: "pug", limit: 1 } });
    for (let i = 0; i < 12; i++) {
      const missing = await stack
        .http()
        .post(`/api/tasks/${crypto.randomUUID()}/retry`)
        .set(json)
        .set("Authorization", basic(PASSWORD))
        .send({});
      assert.equal(missing.status, 404, `answer ${i + 1}`);
      const running = await stack
        .http()
        .post(`/api/tasks/${pending}/retry`)
        .set(json)
        .set("Authorization", basic(PASSWORD))
        .send({});
      assert.equal(running.status, 409, `answer ${i + 1}`);
    }
    const id = await failedTask(stack);
    await stack
      .http()
      .post(`/api/tasks/${id}/retry`)
      .set(json)
      .set("Authorization", basic(PASSWORD))
      .send({})
      .expect(202);
  });
});

describe("a lockout of the admin's address", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(() => stack?.stop());

  test("when a stranger on the admin's address guesses 10 times, then the admin's browser still gets in with the password, and the stranger waits even with it", async () => {
    const admin = stack.agent();
    const first = await admin.delete("/api/photos").set(json).set("Authorization", basic(PASSWORD)).expect(200);
    assert.match(
      String(first.headers["set-cookie"]),
      /gendog\.admin=[^;]+;.*HttpOnly.*SameSite=Strict/i,
      "the admin's browser is known from now on",
    );

    for (let i = 0; i < 10; i++)
      await stack
        .http()
        .delete("/api/photos")
        .set(json)
        .set("Authorization", basic(`guess number ${i}`))
        .expect(401);
    await stack.http().delete("/api/photos").set(json).expect(429); // a missing password counts too, and is refused now
    const stranger = await stack
      .http()
      .delete("/api/photos")
      .set(json)
      .set("Authorization", basic(PASSWORD))
      .expect(429);
    const wait = Number(stranger.headers["retry-after"]);
    assert.ok(
      wait > 800 && wait <= 900,
      `the right password from an unknown browser is no way round the lockout (Retry-After ${wait})`,
    );

    await admin.delete("/api/photos").set(json).set("Authorization", basic(PASSWORD)).expect(200);
    // The admin's own wrong guesses count against the browser, not the address.
    for (let i = 0; i < 10; i++)
      await admin
        .delete("/api/photos")
        .set(json)
        .set("Authorization", basic(`typo ${i}`))
        .expect(401);
    await admin.delete("/api/photos").set(json).set("Authorization", basic(PASSWORD)).expect(429);
  });

  test("when a cookie is made up, then it is no way round the lockout", async () => {
    const madeUp = `gendog.admin=${"A".repeat(22)}.${"B".repeat(43)}`;
    await stack
      .http()
      .delete("/api/photos")
      .set(json)
      .set("Cookie", madeUp)
      .set("Authorization", basic(PASSWORD))
      .expect(429);
  });
});

describe("X-Forwarded-For from a client that is not a configured proxy", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD, EVENT_STREAMS_PER_CLIENT: "3" } });
  });
  after(() => stack?.stop());

  // First: the guessing below locks this address out.
  test("when someone retries a task with a made-up X-Forwarded-For, then the task records the address it really came from", async () => {
    const id = await failedTask(stack);
    await stack
      .http()
      .post(`/api/tasks/${id}/retry`)
      .set(json)
      .set("X-Forwarded-For", "203.0.113.9")
      .set("Authorization", basic(PASSWORD, "ops"))
      .send({})
      .expect(202);
    const { retriedBy } = await stack.db.task.findUniqueOrThrow({ where: { id } });
    assert.match(retriedBy ?? "", /^ops from (::ffff:)?127\.0\.0\.1$/);
  });

  test("when a client rotates X-Forwarded-For while guessing, then it is still one client and waits after 10", async () => {
    const answers: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await stack
        .http()
        .delete("/api/photos")
        .set(json)
        .set("X-Forwarded-For", `198.51.100.${i + 1}`)
        .set("Authorization", basic(`guess ${i}`));
      answers.push(res.status);
    }
    assert.deepEqual(answers, [...Array(10).fill(401), ...Array(20).fill(429)]);
  });

  test("when a client rotates X-Forwarded-For, then it gets no more live streams than one client", async () => {
    const streams = [];
    try {
      for (let i = 0; i < 5; i++)
        streams.push(await openStream(stack.url, { "x-forwarded-for": `198.51.100.${100 + i}` }));
      assert.deepEqual(
        streams.map((s) => s.status),
        [200, 200, 200, 429, 429],
      );
    } finally {
      streams.forEach((s) => s.close());
    }
  });
});

describe("X-Forwarded-For from a configured proxy (TRUST_PROXY)", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD, TRUST_PROXY: "loopback" } });
  });
  after(() => stack?.stop());

  test("when TRUST_PROXY names the proxy, then the client it names is the one counted and recorded", async () => {
    for (let i = 0; i < 10; i++)
      await stack
        .http()
        .delete("/api/photos")
        .set(json)
        .set("X-Forwarded-For", "198.51.100.7")
        .set("Authorization", basic(`guess ${i}`))
        .expect(401);
    await stack
      .http()
      .delete("/api/photos")
      .set(json)
      .set("X-Forwarded-For", "198.51.100.7")
      .set("Authorization", basic("one more"))
      .expect(429);
    // Another client behind the same proxy is not locked out by the first.
    const id = await failedTask(stack);
    await stack
      .http()
      .post(`/api/tasks/${id}/retry`)
      .set(json)
      .set("X-Forwarded-For", "203.0.113.9")
      .set("Authorization", basic(PASSWORD, "ops"))
      .send({})
      .expect(202);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).retriedBy, "ops from 203.0.113.9");
  });

  test("when TRUST_PROXY is not a list of addresses, subnets or loopback/linklocal/uniquelocal, then the process does not start and the error names it", () => {
    for (const bad of ["true", "*", "10.0.0.0/40", "example.com", "1", "loopback,,"]) {
      assert.throws(
        () => loadConfig({ TRUST_PROXY: bad }),
        (err: unknown) => err instanceof ConfigError && err.variable === "TRUST_PROXY",
        bad,
      );
    }
    assert.deepEqual(loadConfig({}).trustProxy, [], "no proxy is trusted unless configured");
    assert.deepEqual(loadConfig({ TRUST_PROXY: " loopback, 10.0.0.0/8 ,::1" }).trustProxy, [
      "loopback",
      "10.0.0.0/8",
      "::1",
    ]);
  });
});

/** This machine's first address that is not loopback, if it has one. */
const outside = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === "IPv4")?.address;

describe("without ADMIN_PASSWORD", { skip: outside ? undefined : "this machine has no address but loopback" }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { HOST: "0.0.0.0" } });
  });
  after(() => stack?.stop());

  test("when a client on another address clears, purges, retries or pauses, then it is refused (403) and nothing is done", async () => {
    const remote = () => request(`http://${outside}:${stack.web!.port}`);
    const id = await failedTask(stack);
    await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    for (const [method, path, body] of [
      ["post", "/api/queue/purge", { expected: 1 }],
      ["post", "/api/workers/pause", {}],
      ["post", `/api/tasks/${id}/retry`, {}],
      ["post", "/api/dead-letters/discard", { expected: 0 }],
      ["delete", "/api/photos", {}],
    ] as const) {
      const res = await remote()[method](path).set(json).send(body);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error.code, "forbidden");
    }
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "FAILURE");
    // Reading and submitting stay open to everyone.
    await remote().get("/api/tasks").expect(200);
    await remote().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
  });

  test("when a request reaches the web through a proxy that TRUST_PROXY does not name, then it is not taken for this machine's", async () => {
    const id = await failedTask(stack);
    await stack
      .http()
      .post(`/api/tasks/${id}/retry`)
      .set(json)
      .set("X-Forwarded-For", "198.51.100.1")
      .send({})
      .expect(403);
    await stack.http().post(`/api/tasks/${id}/retry`).set(json).send({}).expect(202);
  });
});

describe("without ADMIN_PASSWORD, behind a proxy TRUST_PROXY names", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { TRUST_PROXY: "loopback" } });
  });
  after(() => stack?.stop());

  test("when the proxy names the client in X-Real-IP or Forwarded (which do not set the client's address), then the request is not taken for this machine's", async () => {
    const id = await failedTask(stack);
    const retry = () => stack.http().post(`/api/tasks/${id}/retry`).set(json);
    await retry().set("X-Real-IP", "8.8.8.8").send({}).expect(403);
    await retry().set("Forwarded", "for=8.8.8.8").send({}).expect(403);
    await retry().set("X-Forwarded-For", "8.8.8.8").send({}).expect(403);
    await retry().set("X-Forwarded-For", "127.0.0.1").set("X-Real-IP", "8.8.8.8").send({}).expect(403);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "FAILURE");
    await retry().send({}).expect(202);
  });
});
