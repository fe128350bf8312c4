// What the pages say about a task after things happen to it: a cancel that came too late,
// a cancel while it waits to retry, photos cleared from the gallery, and the gallery's
// count of photos that several tasks found.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { PHOTOS_PER_PAGE } from "../lib/useCases/gallery.ts";
import { startFakeDogApi, type FakeDogApi } from "../dev/fake-dog-api.ts";
import { csrfTokenFrom, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const FINISHED = ["SUCCESS", "FAILURE", "REVOKED"];
const submit = async (stack: Stack, body: object) =>
  (await stack.http().post("/api/tasks").send(body).expect(202)).body.id as string;
/** The page's text without tags, spaces collapsed. */
const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, " ")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");

describe("a task's pages after what happened to it", () => {
  let stack: Stack;
  before(async () => {
    // Retries wait a minute, so a task stays in RETRY while the test looks at it; dog.ceo's
    // answers may take 5 s, so the running task's slow answer (1.5 s) is never a timeout.
    stack = await startStack({
      workers: 1,
      env: { RETRY_BASE_MS: "60000", RETRY_MAX_MS: "120000", RETRY_MAX_ATTEMPTS: "3", DOG_API_TIMEOUT_MS: "5000" },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  test("when a task is running, then its page and the API say which worker holds it, and show the job message it was sent with", async () => {
    await waitFor(
      "the worker heard from",
      async () => (await stack.http().get("/api/workers").expect(200)).body.workers.length === 1,
    );
    stack.fake.failNext("slow", 1, { delayMs: 1500 });
    const taskId = await submit(stack, { breed: "pug", limit: 2 });
    await waitForTaskState(stack.db, taskId, ["STARTED"]);
    const { body } = await stack.http().get(`/api/tasks/${taskId}`).expect(200);
    assert.deepEqual(
      { ...body.heldBy, since: undefined },
      { workerId: stack.workers[0]!.id, status: "alive", paused: false, since: undefined },
    );
    assert.equal(body.job.attempt, 1);
    assert.ok(body.job.sentAt, "the broker confirmed it");
    assert.deepEqual(JSON.parse(body.job.body), { taskId, breed: "pug", limit: 2 });
    const page = text((await stack.http().get(`/tasks/${taskId}`).expect(200)).text);
    assert.match(page, new RegExp(`Held by ${stack.workers[0]!.id} alive`));
    assert.match(page, /Job message Published with x-attempt: 1 , confirmed by RabbitMQ/);
    assert.match(page, new RegExp(`&quot;taskId&quot;: &quot;${taskId}&quot;`));
    await waitForTaskState(stack.db, taskId, ["SUCCESS"]);
    const done = await stack.http().get(`/api/tasks/${taskId}`).expect(200);
    assert.equal(done.body.heldBy, null);
    assert.match((await stack.http().get(`/tasks/${taskId}`).expect(200)).text, /id="attempt-1"/);
  });

  test("when a person cancels a task that finished meanwhile, then they land on its page told it was too late, not on an error page", async () => {
    const taskId = await submit(stack, { breed: "pug", limit: 2 });
    const agent = stack.agent();
    // The page as the person saw it, while the task could still be cancelled...
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    assert.equal((await waitForTaskState(stack.db, taskId, FINISHED)).state, "SUCCESS");
    // ...and their click, after it finished.
    const res = await agent.post(`/tasks/${taskId}/cancel`).type("form").send({ _csrf: token }).expect(303);
    assert.equal(res.headers.location, `/tasks/${taskId}?cancel=too-late`);
    const page = await agent.get(res.headers.location!).expect(200);
    assert.match(text(page.text), /Not cancelled: it had already finished when your cancel arrived\./);
    assert.doesNotMatch(page.text, /Something went wrong/);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id: taskId } })).state, "SUCCESS");
  });

  test("when a task that already ran is cancelled while it waits to retry, then its page says so and promises no next try", async () => {
    stack.fake.failNext("http500", 1);
    const taskId = await submit(stack, { breed: "pug", limit: 2 });
    assert.equal((await waitForTaskState(stack.db, taskId, ["RETRY", ...FINISHED])).state, "RETRY");
    const before = text((await stack.http().get(`/tasks/${taskId}`).expect(200)).text);
    assert.match(before, /next try in/);

    await stack.http().post(`/api/tasks/${taskId}/cancel`).set("Content-Type", "application/json").expect(200);
    const page = text((await stack.http().get(`/tasks/${taskId}`).expect(200)).text);
    assert.doesNotMatch(page, /next try in/);
    assert.match(page, /cancelled before the next try/);
    assert.match(page, /cancelled while it waited to try again/);
    assert.doesNotMatch(page, /cancelled before it ran/);
    assert.match(page, /1 attempt\b/);
  });

  test("when the gallery is cleared, then the task's pages say its photos were cleared instead of promising them", async () => {
    const taskId = await submit(stack, { breed: "kelpie", limit: 3 });
    assert.equal((await waitForTaskState(stack.db, taskId, FINISHED)).state, "SUCCESS");
    const row = (html: string) => new RegExp(`<tr data-task-id="${taskId}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";
    assert.doesNotMatch(text(row((await stack.http().get("/").expect(200)).text)), /cleared/);

    await stack.http().delete("/api/photos").set("Content-Type", "application/json").expect(200);
    const page = text((await stack.http().get(`/tasks/${taskId}`).expect(200)).text);
    assert.match(page, /3 of 3 photos \(cleared from the gallery\)/);
    assert.match(page, /Its 3 photos were cleared from the gallery\./);
    assert.doesNotMatch(page, /yet/);
    assert.match(text(row((await stack.http().get("/").expect(200)).text)), /3 photos \(cleared\)/);
    assert.match(text(row((await stack.http().get("/tasks").expect(200)).text)), /3 \(cleared\)/);
    const { body } = await stack.http().get(`/api/tasks?id=${taskId}`).expect(200);
    assert.deepEqual([body.tasks[0].photoCount, body.tasks[0].photosInGallery], [3, 0]);
  });

  test("when a task ends without photos, then its page says it found none, not that they are coming", async () => {
    stack.fake.failNext("http500", 1);
    const taskId = await submit(stack, { breed: "pug", limit: 2 });
    assert.equal((await waitForTaskState(stack.db, taskId, ["RETRY", ...FINISHED])).state, "RETRY");
    const waiting = (await stack.http().get(`/tasks/${taskId}`).expect(200)).text;
    // The placeholders say what is coming; no "no photos" message under them.
    assert.match(text(waiting), /pug: 0 of 2 photos so far/);
    assert.doesNotMatch(waiting, /gallery-empty/);
    assert.match(waiting, /<noscript>.*reload it to follow the task/);
    await stack.http().post(`/api/tasks/${taskId}/cancel`).set("Content-Type", "application/json").expect(200);
    const page = text((await stack.http().get(`/tasks/${taskId}`).expect(200)).text);
    assert.match(page, /This task found no photos\./);
    assert.doesNotMatch(page, /photos so far/);
    assert.doesNotMatch(page, /noscript/);
  });

  test("when several tasks fetch the same photos, then the gallery's count says each photo shows once", async () => {
    const ids = [
      await submit(stack, { breed: "kelpie", limit: 8 }),
      await submit(stack, { breed: "kelpie", limit: 8 }),
    ];
    for (const id of ids) assert.equal((await waitForTaskState(stack.db, id, FINISHED)).state, "SUCCESS");
    const count = /id="gallery-count">([^]*?)<\/p>/.exec((await stack.http().get("/").expect(200)).text)?.[1] ?? "";
    const total = await stack.db.photo.count();
    assert.match(
      text(count),
      new RegExp(
        `Showing ${Math.min(total, PHOTOS_PER_PAGE)} of ${total} photos each shown once, however many tasks fetched it`,
      ),
    );
  });

  test("when thirty tasks run at once, then every task's timeline reads in order", async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, () => submit(stack, { breed: "pug", limit: 1 })));
    for (const id of ids) assert.equal((await waitForTaskState(stack.db, id, FINISHED)).state, "SUCCESS");
    const out: string[] = [];
    for (const id of ids) {
      const { task } = (await stack.http().get(`/api/tasks/${id}`).expect(200)).body;
      const times = ["createdAt", "queuedAt", "startedAt", "finishedAt"].map((k) => Date.parse(task[k]));
      if (!times.every((t, i) => !Number.isNaN(t) && (i === 0 || times[i - 1]! <= t)))
        out.push(`${id}: ${times.map((t) => new Date(t).toISOString()).join(" ")}`);
    }
    assert.deepEqual(out, []);
  });
});

describe("a task whose every photo link is on a host that is not allowed", () => {
  let fake: FakeDogApi;
  let stack: Stack;
  before(async () => {
    // The stand-in's links name 127.0.0.1; the worker reaches it as 127.0.0.2, so only that
    // origin is allowed and every link it sends is dropped.
    fake = await startFakeDogApi({ host: "0.0.0.0" });
    stack = await startStack({ workers: 1, fake, env: { DOG_API_URL: fake.url.replace("127.0.0.1", "127.0.0.2") } });
  });
  after(async () => {
    await stack?.stop();
    await fake?.close();
  });

  test("when a person submits it, then the banner shows only the placeholders while it runs, and the task ends FAILURE saying why, not SUCCESS with 0 photos", async () => {
    stack.fake.failNext("slow", 1, { delayMs: 1000 });
    const taskId = await submit(stack, { breed: "pug", limit: 3 });
    const home = (await stack.http().get(`/?submitted=${taskId}`).expect(200)).text;
    assert.match(text(home), /pug: 0 of 3 photos so far/);
    assert.doesNotMatch(home, /No photos yet/, "no empty-gallery message under the placeholders");
    assert.match(home, /<noscript>.*reload it to see the photos/);

    const task = await waitForTaskState(stack.db, taskId, FINISHED);
    assert.equal(task.state, "FAILURE");
    assert.equal(task.photoCount, 0);
    const page = text((await stack.http().get(`/tasks/${taskId}`).expect(200)).text);
    assert.match(
      page,
      /none of the 3 photo links dog\.ceo sent is on an allowed image host \(the first is on http:\/\/127\.0\.0\.1:\d+\)/,
    );
    assert.match(page, /add that host to IMAGE_ORIGINS, then retry this task/);
    assert.match(page, /This task found no photos\./);
    const done = text((await stack.http().get(`/?submitted=${taskId}`).expect(200)).text);
    assert.match(done, /Could not fetch 3 × pug .*none of the 3 photo links/);
    assert.match(done, /No photos yet/);
  });
});
