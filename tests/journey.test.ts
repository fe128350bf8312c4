// The whole journey on real parts: the form, RabbitMQ, the worker, the stand-in, SQLite.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { submitTask } from "../lib/useCases/tasks.ts";
import { csrfTokenFrom, galleryImages, startStack, waitForTaskState, type Stack } from "./support/stack.ts";

describe("the GenDog journey", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  async function submitForm(breed: string, limit: string) {
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const res = await agent.post("/tasks").type("form").send({ breed, limit, _csrf: token });
    return { agent, res };
  }

  function taskIdFrom(location: string): string {
    const id = new URL(location, "http://x").searchParams.get("submitted");
    assert.ok(id, `no task id in ${location}`);
    return id;
  }

  test("when a person submits hound (afghan) with limit 5, the gallery shows exactly that task's 5 photos", async () => {
    const { agent, res } = await submitForm("hound/afghan", "5");
    assert.equal(res.status, 303);
    const taskId = taskIdFrom(res.headers.location!);

    const flash = await agent.get(res.headers.location!).expect(200);
    assert.match(flash.text, new RegExp(`task ${taskId.slice(0, 8)}\\)`));
    assert.match(flash.text, new RegExp(`href="/tasks/${taskId}"`));

    const task = await waitForTaskState(stack.db, taskId, ["SUCCESS", "FAILURE"]);
    assert.equal(task.state, "SUCCESS");
    // The banner follows its task: once done it says so, never "fetching" of a finished task.
    const banner = (html: string) => /id="flash">\s*([^<]*)/.exec(html)?.[1]?.trim();
    assert.equal(
      banner((await agent.get(res.headers.location!).expect(200)).text),
      `Done: 5 photos of hound (afghan) fetched (task ${taskId.slice(0, 8)}).`,
    );
    assert.equal(task.photoCount, 5);
    assert.ok(task.startedAt && task.finishedAt && task.queuedAt);

    const links = await stack.db.taskPhoto.findMany({
      where: { taskId },
      include: { photo: true },
      orderBy: { position: "asc" },
    });
    assert.equal(links.length, 5);
    for (const { photo } of links) {
      assert.ok(photo.url.startsWith(`${stack.fake.origin}/images/breeds/hound-afghan/`), photo.url);
      assert.equal(photo.breed, "hound");
      assert.equal(photo.subBreed, "afghan");
    }

    const page = await stack.http().get("/").expect(200);
    assert.deepEqual(new Set(galleryImages(page.text)), new Set(links.map((l) => l.photo.url)));
    // Alt text names the breed and tells the photos apart.
    const alts = [...page.text.matchAll(/<img src="[^"]*" alt="([^"]*)" loading="lazy"/g)].map((m) => m[1]);
    assert.equal(alts.length, 5);
    assert.ok(
      alts.every((alt) => /^hound \(afghan\), photo \S+$/.test(alt!)),
      String(alts),
    );
    assert.equal(new Set(alts).size, 5, "no two photos share their alt text");
    assert.match(page.text, /loading="lazy"/);
  });

  test("when a sub-breed is picked, the worker asks dog.ceo for that sub-breed only", async () => {
    const { res } = await submitForm("bulldog/french", "3");
    const taskId = taskIdFrom(res.headers.location!);
    const task = await waitForTaskState(stack.db, taskId, ["SUCCESS", "FAILURE"]);
    assert.equal(task.state, "SUCCESS");
    const photos = await stack.db.photo.findMany({ where: { tasks: { some: { taskId } } } });
    assert.equal(photos.length, 3);
    assert.ok(photos.every((p) => p.url.includes("/breeds/bulldog-french/")));
  });

  test("when dog.ceo does not know the breed, the task ends FAILURE carrying dog.ceo's message", async () => {
    // The form only offers known breeds, so the unknown one enters below validation.
    const { task } = await submitTask(stack.taskDeps(), { breed: "nope", limit: 3 });
    const done = await waitForTaskState(stack.db, task.id, ["SUCCESS", "FAILURE"]);
    assert.equal(done.state, "FAILURE");
    assert.equal(done.error, "dog.ceo: Breed not found (main breed does not exist)");
    assert.equal(done.attemptCount, 1, "a permanent failure is not retried");

    const page = await stack.http().get(`/tasks/${task.id}`).expect(200);
    assert.match(page.text, /Breed not found \(main breed does not exist\)/);
  });

  test("when photos are cleared (and the person confirmed), the gallery is empty and the tasks are kept", async () => {
    const before = await stack.db.task.count();
    assert.ok((await stack.db.photo.count()) > 0);
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const unconfirmed = await agent.post("/photos/clear").type("form").send({ _csrf: token }).expect(400);
    assert.match(unconfirmed.text, /delete every photo/);
    assert.ok((await stack.db.photo.count()) > 0, "nothing is deleted without the confirmation");

    const res = await agent.post("/photos/clear").type("form").send({ _csrf: token, confirm: "yes" }).expect(303);
    assert.match(res.headers.location!, /cleared=\d+/);

    assert.equal(await stack.db.photo.count(), 0);
    assert.equal(await stack.db.task.count(), before);
    const page = await stack.http().get("/").expect(200);
    assert.deepEqual(galleryImages(page.text), []);
  });

  test("when there are more photos than a page holds, the gallery pages through them newest first", async () => {
    const ids: string[] = [];
    for (const breed of ["hound/basset", "hound/blood"]) {
      const { res } = await submitForm(breed, "30");
      ids.push(taskIdFrom(res.headers.location!));
    }
    for (const id of ids) assert.equal((await waitForTaskState(stack.db, id, ["SUCCESS", "FAILURE"])).state, "SUCCESS");
    assert.equal(await stack.db.photo.count(), 60);

    const first = galleryImages((await stack.http().get("/").expect(200)).text);
    const second = galleryImages((await stack.http().get("/?page=2").expect(200)).text);
    assert.equal(first.length, 48);
    assert.equal(second.length, 12);
    assert.equal(new Set([...first, ...second]).size, 60);
    // The newest task's photos come first.
    assert.ok(first[0]!.includes("hound-blood"), first[0]);
  });
});
