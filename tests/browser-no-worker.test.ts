/// <reference lib="dom" />
// With no worker taking jobs, the pages say so, in a real browser: the home page, the banner
// after a submit and the task's page tell that the task waits in the queue (as Flower does),
// and the words come and go by themselves as workers start, pause and resume.
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { createLogger } from "../lib/platform/logger.ts";
import { startWorker } from "../tasks/worker.ts";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe(
  "pages that say no worker is running",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      // Pause and resume are signed with a key the web and the worker share.
      stack = await startStack({ workers: 0, env: { CONTROL_SECRET: "pagesa-test-control-secret-0123456789abcdef" } });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
      });
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    const text = async (page: Page, selector: string) =>
      (await page.$(selector)) ? ((await page.textContent(selector)) ?? "") : "";

    test("when no worker runs, then a submit is told it waits in the queue, and the words go once a worker starts and come back when it is paused", async () => {
      const home = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      // A web that just started listens for a heartbeat round before it says anything.
      await waitFor(
        "the home page to say no worker is running",
        async () => {
          await home.goto(stack.url);
          return /No worker is running/.test(await text(home, "#worker-notice"));
        },
        15_000,
      );
      await home.selectOption("#breed", "pug");
      await home.fill("#limit", "4");
      await Promise.all([home.waitForNavigation(), home.click("#task-form button[type=submit]")]);
      const taskId = (await home.getAttribute("[data-follow-task]", "data-follow-task"))!;
      const banner = await text(home, "#flash");
      assert.match(banner, /No worker is running: your task waits in the queue/);
      assert.doesNotMatch(banner, /Fetching/);
      assert.equal((await text(home, "#worker-notice")).trim(), "", "said once, in the banner");
      await home.waitForSelector("#live-indicator[data-state=live]", { timeout: 10_000 });

      const task = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await task.goto(`${stack.url}/tasks/${taskId}`);
      assert.match(await text(task, "#task-idle"), /No worker is running: your task waits in the queue/);
      await task.waitForSelector("#live-indicator[data-state=live]", { timeout: 10_000 });

      stack.workers.push(await startWorker(stack.config, createLogger("silent", "test")));
      await waitForTaskState(stack.db, taskId, ["SUCCESS"], 20_000);
      await home.waitForFunction(
        () => /Done: 4 photos/.test(document.getElementById("flash")?.textContent ?? ""),
        undefined,
        { timeout: 10_000 },
      );
      await task.waitForSelector("#task-detail [data-state=SUCCESS]", { timeout: 10_000 });
      assert.equal(await task.$("#task-idle"), null);

      await stack.http().post("/api/workers/pause").set("Content-Type", "application/json").send({}).expect(202);
      // Live: the home page redraws when the workers' availability changes, without a reload.
      await home.waitForFunction(
        () => /Every worker is paused/.test(document.getElementById("worker-notice")?.textContent ?? ""),
        undefined,
        { timeout: 15_000 },
      );
      await stack.http().post("/api/workers/resume").set("Content-Type", "application/json").send({}).expect(202);
      await home.waitForFunction(
        () => (document.getElementById("worker-notice")?.textContent ?? "").trim() === "",
        undefined,
        { timeout: 15_000 },
      );
      await home.close();
      await task.close();
    });
  },
);
