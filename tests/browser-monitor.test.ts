/// <reference lib="dom" />
// The monitor's buttons in a real browser (Debian's chromium driven by playwright-core),
// with ADMIN_PASSWORD set: retry a task and a group of failures, requeue and discard dead
// letters, purge the queue, pause and resume the workers; and the refusals a person can
// meet: a wrong password, a count that changed since the page was shown, a dead letter
// someone else already took.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.SCREENSHOTS_DIR ?? path.join(os.tmpdir(), "gendog-screenshots");
const PASSWORD = "correct horse battery staple";

describe(
  "the monitor's buttons in a real browser",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({ workers: 1, env: { ADMIN_PASSWORD: PASSWORD, RETRY_MAX_ATTEMPTS: "1" } });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
      });
      await mkdir(SCREENSHOTS, { recursive: true });
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    /** A page whose browser answers the password prompt with `password`, and accepts every confirm(). */
    async function pageWith(password: string): Promise<Page> {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        httpCredentials: { username: "ops", password },
      });
      const page = await context.newPage();
      page.on("dialog", (dialog) => void dialog.accept());
      return page;
    }

    async function failedTask(): Promise<string> {
      stack.fake.failNext("http500", 1);
      const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
      await waitForTaskState(stack.db, body.id, ["FAILURE"]);
      return body.id;
    }

    test("when a person retries a failed task from its page, then it runs again; with a wrong password nothing happens", async () => {
      const id = await failedTask();
      const wrong = await pageWith("not the password, no");
      await wrong.goto(`${stack.url}/tasks/${id}`);
      await wrong.click("#retry-form button");
      await wrong.waitForLoadState();
      assert.match((await wrong.textContent("body")) ?? "", /needs the admin password/);
      assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "FAILURE");
      await wrong.context().close();

      const page = await pageWith(PASSWORD);
      await page.goto(`${stack.url}/tasks/${id}`);
      await page.click("#retry-form button");
      await page.waitForSelector("#task-notice");
      assert.match((await page.textContent("#task-notice")) ?? "", /Sent again with a new retry budget/);
      await waitForTaskState(stack.db, id, ["SUCCESS"]);
      await page.waitForSelector("#task-detail [data-role=state][data-state=SUCCESS]", { timeout: 10_000 });
      assert.match((await page.textContent("#retried")) ?? "", /by ops from /);
      await page.screenshot({ path: path.join(SCREENSHOTS, "monitor-task-retried.png"), fullPage: true });
      await page.context().close();
    });

    test("when a failure group grew after the page was shown, then its button retries nothing and says so; pressed again, it retries them all", async () => {
      await stack.db.task.updateMany({ where: { state: "FAILURE" }, data: { state: "SUCCESS" } });
      await failedTask();
      const page = await pageWith(PASSWORD);
      await page.goto(`${stack.url}/tasks`);
      await page.waitForSelector("#failures form button");
      assert.equal(((await page.textContent("#failures form button")) ?? "").trim(), "Retry these 1");
      await page.evaluate(() => window.stop()); // hold the page as it is: no live refresh of the count
      await failedTask();
      await page.click("#failures form button");
      await page.waitForSelector("#monitor-notice");
      assert.match(
        (await page.textContent("#monitor-notice")) ?? "",
        /Nothing was done: you confirmed 1, but 2 match now/,
      );
      await page.click("#failures form button"); // the page now shows 2
      await page.waitForFunction(() =>
        /Sent 2 failed tasks again/.test(document.querySelector("#monitor-notice")?.textContent ?? ""),
      );
      await waitFor("both ran again", async () => (await stack.db.task.count({ where: { state: "FAILURE" } })) === 0);
      await page.context().close();
    });

    test("when a person requeues and discards dead letters, then the page tells what happened, also for a letter someone else took", async () => {
      const dead = `${stack.config.queueName}.dead`;
      const requeued = await failedTask();
      await failedTask();
      await waitFor("two dead letters", async () => (await queueDepth(dead)) >= 2);
      const total = await queueDepth(dead);
      const page = await pageWith(PASSWORD);
      await page.goto(`${stack.url}/dead-letters`);
      await page.screenshot({ path: path.join(SCREENSHOTS, "monitor-dead-letters.png"), fullPage: true });
      await page.click(`tr:has(a[href="/tasks/${requeued}"]) button:has-text("Requeue")`);
      await page.waitForSelector("#monitor-notice");
      assert.match((await page.textContent("#monitor-notice")) ?? "", /Requeued 1 dead letter/);
      await waitForTaskState(stack.db, requeued, ["SUCCESS"]);

      // Another person discards everything while this page still shows a letter.
      const key = await page.getAttribute("#dead-letters tbody tr[data-key]", "data-key");
      const rest = await queueDepth(dead);
      await stack
        .http()
        .post("/api/dead-letters/discard")
        .set("Content-Type", "application/json")
        .set("Authorization", `Basic ${Buffer.from(`x:${PASSWORD}`).toString("base64")}`)
        .send({ expected: rest })
        .expect(200);
      await page.click(`tr[data-key="${key}"] button:has-text("Discard")`);
      await page.waitForSelector("#monitor-notice");
      assert.match((await page.textContent("#monitor-notice")) ?? "", /not in the queue any more/);
      assert.equal(await queueDepth(dead), 0);
      assert.ok(total >= 2);
      await page.context().close();
    });

    test("when a person pauses the workers, purges what waits and resumes, then the panel follows and the purged tasks are cancelled", async () => {
      const page = await pageWith(PASSWORD);
      await page.goto(`${stack.url}/tasks`);
      await page.click('#workers-panel form[action="/workers/pause"]:not(:has(input[name=worker])) button');
      await page.waitForSelector('#workers-panel [data-role="paused"]', { timeout: 10_000 });
      const ids: string[] = [];
      for (let i = 0; i < 2; i++)
        ids.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
      await waitFor("two jobs waiting", async () => (await queueDepth(stack.config.queueName)) === 2);
      await page.reload();
      await page.waitForSelector("#purge-form button");
      assert.equal(((await page.textContent("#purge-form button")) ?? "").trim(), "Purge 2 waiting");
      await page.click("#purge-form button");
      await page.waitForSelector("#monitor-notice");
      assert.match(
        (await page.textContent("#monitor-notice")) ?? "",
        /Purged 2 jobs from the work queue; 2 tasks cancelled/,
      );
      assert.deepEqual(
        (await stack.db.task.findMany({ where: { id: { in: ids } } })).map((t) => t.state),
        ["REVOKED", "REVOKED"],
      );
      await page.screenshot({ path: path.join(SCREENSHOTS, "monitor-paused-purged.png"), fullPage: true });

      await page.click('#workers-panel form[action="/workers/resume"]:not(:has(input[name=worker])) button');
      await page.waitForFunction(() => !document.querySelector('#workers-panel [data-role="paused"]'), undefined, {
        timeout: 10_000,
      });
      await page.context().close();
    });
  },
);
