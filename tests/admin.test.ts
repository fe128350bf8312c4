// ADMIN_PASSWORD: with it set, the actions that change or delete ask for it (HTTP Basic,
// any user name); reading stays open, and wrong guesses are limited.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../lib/platform/config.ts";
import { csrfTokenFrom, startStack, waitForTaskState, type Stack } from "./support/stack.ts";

const PASSWORD = "correct horse battery staple";
const basic = (password: string, user = "admin") => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("the admin password", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(async () => {
    await stack?.stop();
  });

  async function taskWithPhotos(): Promise<string> {
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["SUCCESS"]);
    return body.id;
  }

  test("when ADMIN_PASSWORD is too short, then the process does not start and the error names it", () => {
    assert.throws(
      () => loadConfig({ ADMIN_PASSWORD: "short" }),
      (err: unknown) => err instanceof ConfigError && err.variable === "ADMIN_PASSWORD",
    );
    assert.equal(loadConfig({}).adminPassword, undefined, "off unless set");
  });

  test("when the API is asked to clear the gallery without the password or with a wrong one, then it answers 401 and nothing is deleted", async () => {
    await taskWithPhotos();
    const photos = await stack.db.photo.count();
    assert.ok(photos > 0);
    for (const authorization of [
      undefined,
      basic("wrong password here"),
      "Bearer " + PASSWORD,
      basic(PASSWORD).slice(0, -4),
    ]) {
      const req = stack.http().delete("/api/photos").set("Content-Type", "application/json");
      const res = await (authorization ? req.set("Authorization", authorization) : req).expect(401);
      assert.equal(res.body.error.code, "unauthorized");
      assert.equal(res.headers["www-authenticate"], 'Basic realm="GenDog admin", charset="UTF-8"');
    }
    assert.equal(await stack.db.photo.count(), photos);

    const ok = await stack
      .http()
      .delete("/api/photos")
      .set("Content-Type", "application/json")
      .set("Authorization", basic(PASSWORD, "anyone"))
      .expect(200);
    assert.equal(ok.body.deleted, photos);
    assert.equal(await stack.db.photo.count(), 0);
  });

  test("when a person uses the forms, then clearing and cancelling ask for the password and work with it", async () => {
    await taskWithPhotos();
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const refused = await agent.post("/photos/clear").type("form").send({ _csrf: token, confirm: "yes" }).expect(401);
    assert.match(refused.headers["content-type"] ?? "", /^text\/html/);
    assert.match(refused.text, /This action needs the admin password\./);
    assert.ok((await stack.db.photo.count()) > 0);
    await agent
      .post("/photos/clear")
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: token, confirm: "yes" })
      .expect(303);
    assert.equal(await stack.db.photo.count(), 0);

    // A task with no job yet, so no worker races the cancel.
    const id = crypto.randomUUID();
    await stack.db.task.create({ data: { id, breed: "pug", limit: 1 } });
    await agent.post(`/tasks/${id}/cancel`).type("form").send({ _csrf: token }).expect(401);
    await stack.http().post(`/api/tasks/${id}/cancel`).set("Content-Type", "application/json").expect(401);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "PENDING");
    await agent
      .post(`/tasks/${id}/cancel`)
      .set("Authorization", basic(PASSWORD))
      .type("form")
      .send({ _csrf: token })
      .expect(303);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "REVOKED");
  });

  test("when someone only reads, then every page and read endpoint stays open without the password", async () => {
    const id = await taskWithPhotos();
    for (const path of [
      "/",
      "/tasks",
      `/tasks/${id}`,
      "/api/tasks",
      `/api/tasks/${id}`,
      "/api/photos",
      "/api/queue",
      "/api/workers",
      "/metrics",
    ]) {
      await stack.http().get(path).expect(200);
    }
    // Submitting is not an admin action.
    await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
  });
});

describe("guessing the admin password", () => {
  let stack: Stack;
  before(async () => {
    // A stack of its own: the guess counter is per client address, and every test here is 127.0.0.1.
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(async () => {
    await stack?.stop();
  });

  test("when a client keeps guessing, then after 10 wrong passwords it must wait, even with the right one", async () => {
    for (let i = 0; i < 10; i++) {
      await stack
        .http()
        .delete("/api/photos")
        .set("Content-Type", "application/json")
        .set("Authorization", basic(`guess number ${i}`))
        .expect(401);
    }
    const res = await stack
      .http()
      .delete("/api/photos")
      .set("Content-Type", "application/json")
      .set("Authorization", basic(PASSWORD))
      .expect(429);
    assert.equal(res.body.error.code, "rate_limited");
    const wait = Number(res.headers["retry-after"]);
    assert.ok(wait > 800 && wait <= 900, `Retry-After ${wait}: the rest of the 15 minutes`);
  });
});
