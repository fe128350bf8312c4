/// <reference lib="dom" />
// The monitor's own actions, in a real browser: what a press did is told beside the button
// pressed, in view, and the numbers on the page it comes back to include it.
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { queueDepth, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe(
  "the monitor's feedback on its own actions",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({
        workers: 1,
        env: { RETRY_MAX_ATTEMPTS: "1", CONTROL_SECRET: "pagesa-test-control-secret-0123456789abcdef" },
      });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
      });
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    async function open(): Promise<Page> {
      const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
      page.on("dialog", (dialog) => void dialog.accept());
      await page.goto(`${stack.url}/tasks`);
      return page;
    }

    /**
     * Presses the button the way a person does, scrolled into the middle of the view, and waits for the page it leads
     * to.
     */
    async function press(page: Page, selector: string): Promise<void> {
      await page.evaluate((s) => document.querySelector(s)!.scrollIntoView({ block: "center" }), selector);
      await Promise.all([page.waitForNavigation(), page.click(selector)]);
      await page.waitForSelector("#monitor-notice");
    }

    /** Where the notice is, against the view: it must be in it. */
    async function assertNoticeInView(page: Page, what: string): Promise<void> {
      const { top, bottom, height } = await page.evaluate(() => {
        const box = document.getElementById("monitor-notice")!.getBoundingClientRect();
        return { top: Math.round(box.top), bottom: Math.round(box.bottom), height: window.innerHeight };
      });
      assert.ok(
        top >= 0 && bottom <= height,
        `after ${what}, the notice sits at ${top}..${bottom} px of a ${height} px view`,
      );
    }

    test("when a person retries a failure group, then the result is told in view beside the button", async () => {
      stack.fake.failNext("http500", 3);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++)
        ids.push((await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id);
      for (const id of ids) await waitForTaskState(stack.db, id, ["FAILURE"]);
      const page = await open();
      await press(page, "#failures form button");
      assert.match((await page.textContent("#monitor-notice")) ?? "", /Sent 3 failed tasks again/);
      await assertNoticeInView(page, "Retry these 3");
      assert.equal(
        await page.evaluate(() => document.getElementById("monitor-notice")!.closest("#failures") !== null),
        true,
        "in the failures panel",
      );
      await page.close();
    });

    test("when a person pauses, purges and resumes, then each result is in view and the totals count the purged tasks", async () => {
      const page = await open();
      await press(page, '#workers-panel form[action="/workers/pause"]:not(:has(input[name=worker])) button');
      await assertNoticeInView(page, "Pause all");
      await page
        .waitForSelector('#workers-panel [data-role="paused"]', { timeout: 10_000 })
        .catch(async (err: Error) => {
          // Which side missed it: the worker (never paused), the web (never heard), or the page (never told).
          const workers = (await stack.http().get("/api/workers")).body;
          const panel = await stack
            .http()
            .get("/tasks")
            .then((res) => /data-role="paused"/.test(res.text));
          throw new Error(
            `${err.message}\n/api/workers: ${JSON.stringify(workers)}\n/tasks rendered now shows paused: ${panel}`,
          );
        });
      const revokedBefore = await stack.db.task.count({ where: { state: "REVOKED" } });
      for (let i = 0; i < 2; i++) await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
      await waitFor("two jobs waiting", async () => (await queueDepth(stack.config.queueName)) === 2);
      await page.goto(`${stack.url}/tasks`); // the counts are read (and remembered) now
      await page.waitForSelector("#purge-form button");
      await press(page, "#purge-form button");
      assert.match((await page.textContent("#monitor-notice")) ?? "", /Purged 2 jobs/);
      await assertNoticeInView(page, "Purge");
      assert.equal(
        await page.textContent('[data-total="REVOKED"]'),
        String(revokedBefore + 2),
        "the totals include the purge",
      );
      assert.equal(await page.textContent('[data-queue-field="ready"]'), "0", "the queue panel too");
      assert.equal(await page.$("#purge-form"), null, "no purge button for jobs already gone");

      await press(page, '#workers-panel form[action="/workers/resume"]:not(:has(input[name=worker])) button');
      await assertNoticeInView(page, "Resume all");
      await page.close();
    });
  },
);
