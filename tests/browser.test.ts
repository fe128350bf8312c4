/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// In a real browser (Debian's chromium driven by playwright-core): a person submits a
// task and sees its photos appear without reloading.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser } from "playwright-core";
import { startStack, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Outside the repository, so a test run never leaves files in the working tree.
const SCREENSHOTS = process.env.SCREENSHOTS_DIR ?? path.join(os.tmpdir(), "gendog-screenshots");

describe(
  "in a real browser",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({ workers: 1 });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--no-first-run",
          "--disable-sync",
        ],
      });
      await mkdir(SCREENSHOTS, { recursive: true });
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    test("when a person submits hound (afghan) with limit 5, the photos appear without a reload", async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on("console", (msg) => msg.type() === "error" && problems.push(msg.text()));
      page.on("pageerror", (err) => problems.push(err.message));
      await page.goto(`${stack.url}/`);
      await page.waitForSelector("#live-indicator[data-state=live]", { timeout: 10_000 });

      // Hold the worker back a little so the live update, not the redirect, brings the photos.
      stack.fake.failNext("slow", 1, { delayMs: 1500 });
      await page.selectOption("#breed", "hound/afghan");
      await page.fill("#limit", "5");
      await page.click("#task-form button[type=submit]");
      const banner = await page.waitForSelector("[data-follow-task]");
      const taskId = (await banner.getAttribute("data-follow-task"))!;
      // The banner is for this visit: a reload shows the plain page.
      assert.equal(new URL(page.url()).search, "");
      const navigations: string[] = [];
      page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations.push(frame.url()));

      // The new task shows at once; its photos arrive over SSE.
      await page.waitForSelector(`#recent-tasks tr[data-task-id="${taskId}"]`);
      await page.waitForFunction((n) => document.querySelectorAll("#gallery figure[data-photo-id]").length >= n, 5, {
        timeout: 15_000,
      });
      await page.waitForSelector(`#recent-tasks tr[data-task-id="${taskId}"] [data-role=state][data-state=SUCCESS]`, {
        timeout: 10_000,
      });
      assert.deepEqual(navigations, [], "the page did not reload");

      const task = await waitForTaskState(stack.db, taskId, ["SUCCESS"]);
      const expected = (await stack.db.taskPhoto.findMany({ where: { taskId: task.id }, include: { photo: true } }))
        .map((l) => l.photo.url)
        .sort();
      const shown = (
        await page.$$eval("#gallery figure[data-photo-id] img", (imgs) =>
          imgs.map((img) => (img as HTMLImageElement).src),
        )
      ).sort();
      assert.deepEqual(shown, expected);
      // The pictures really load (CSP lets the stand-in's images through).
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll<HTMLImageElement>("#gallery img")].every(
            (img) => img.complete && img.naturalWidth > 0,
          ),
        undefined,
        {
          timeout: 10_000,
        },
      );

      await page.waitForFunction(() => document.getAnimations().every((a) => a.playState === "finished"));
      await page.screenshot({ path: path.join(SCREENSHOTS, "home-after-submit.png"), fullPage: true });
      assert.deepEqual(problems, [], "no console errors or CSP violations");
      await page.close();
    });

    test("when a task is open on its own page, its state and attempts update live", async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      stack.fake.failNext("http503", 2);
      stack.fake.failNext("slow", 1, { delayMs: 1200 }); // under DOG_API_TIMEOUT_MS (1.5 s): the third try succeeds
      const res = await stack
        .http()
        .post("/api/tasks")
        .send({ breed: "retriever", subBreed: "golden", limit: 4 })
        .expect(202);
      await page.goto(`${stack.url}/tasks/${res.body.id}`);
      // The page was rendered while the task was still on its way (two failed tries, then one
      // that waits 1.2 s on dog.ceo), so SUCCESS can only arrive live, without a navigation.
      const shownFirst = await page.getAttribute("[data-role=state]", "data-state");
      assert.notEqual(shownFirst, "SUCCESS", "the page loaded before the task finished");
      const navigations: string[] = [];
      page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations.push(frame.url()));
      await page.waitForSelector("[data-role=state][data-state=SUCCESS]", { timeout: 15_000 });
      assert.deepEqual(navigations, [], "the page did not reload");
      await page.waitForFunction(
        () => document.querySelectorAll("#attempts tr[data-attempt]").length === 3,
        undefined,
        { timeout: 10_000 },
      );
      await page.waitForFunction(
        () => document.querySelectorAll("#gallery figure[data-photo-id]").length === 4,
        undefined,
        { timeout: 10_000 },
      );
      assert.match((await page.textContent("#attempts")) ?? "", /503/);
      await page.waitForFunction(() => document.getAnimations().every((a) => a.playState === "finished"));
      await page.screenshot({ path: path.join(SCREENSHOTS, "task-page.png"), fullPage: true });

      await page.goto(`${stack.url}/tasks`);
      await page.waitForSelector("#workers-panel [data-worker-id]", { timeout: 10_000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, "tasks-monitor.png"), fullPage: true });
      await page.close();
    });
  },
);
