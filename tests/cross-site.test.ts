// What another site can make a visitor's browser send: simple requests (a form post, a
// no-cors fetch) with no body or a non-JSON one. None of them may change anything.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, type Stack } from "./support/stack.ts";

let stack: Stack;
before(async () => {
  stack = await startStack({ workers: 0 });
});
after(async () => {
  await stack?.stop();
});

test("when another site posts to the API with no body or a form body, the API refuses with 415 and nothing changes", async () => {
  const { body: task } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
  await stack.db.photo.create({ data: { url: `${stack.fake.origin}/images/breeds/pug/a.svg`, breed: "pug" } });

  const attempts = [
    stack.http().post(`/api/tasks/${task.id}/cancel`).set("Origin", "https://evil.example"),
    stack.http().post(`/api/tasks/${task.id}/cancel`).type("form").send("x=1"),
    stack.http().post(`/api/tasks/${task.id}/cancel`).set("Content-Type", "text/plain").send("{}"),
    stack.http().delete("/api/photos"),
    stack.http().delete("/api/photos").set("Content-Type", "text/plain"),
    stack.http().post("/api/tasks").type("form").send({ breed: "pug", limit: "1" }),
  ];
  for (const attempt of attempts) {
    const res = await attempt;
    assert.equal(res.status, 415);
    assert.equal(res.body.error.code, "unsupported_media_type");
  }
  assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id: task.id } })).state, "PENDING");
  assert.equal(await stack.db.photo.count(), 1);
  assert.equal(await stack.db.task.count(), 1);
});
