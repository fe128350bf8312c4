/// <reference lib="dom" />
// Acting on a selection of tasks in a real browser (Debian's chromium driven by
// playwright-core), with ADMIN_PASSWORD set and no worker (so what was done stays to be
// read): ticking tasks with the keyboard, the whole page at once, or every match of a search
// without JavaScript; the page that asks with the count; and the chart's values read by focus.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { startStack, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.SCREENSHOTS_DIR ?? path.join(os.tmpdir(), "gendog-screenshots");
const PASSWORD = "correct horse battery staple";

describe(
  "acting on a selection in a real browser",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
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

    async function pageWith({ script = true } = {}): Promise<Page> {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        httpCredentials: { username: "ops", password: PASSWORD },
        javaScriptEnabled: script,
      });
      return context.newPage();
    }

    async function tasks(breed: string, states: ("PENDING" | "SUCCESS" | "FAILURE")[]): Promise<string[]> {
      const ids: string[] = [];
      for (const [i, state] of states.entries()) {
        const id = randomUUID();
        await stack.db.task.create({
          data: {
            id,
            breed,
            limit: 2,
            state,
            error: state === "FAILURE" ? `dog.ceo answered 500 Internal Server Error (${i})` : null,
          },
        });
        ids.push(id);
      }
      return ids;
    }
    const statesOf = async (ids: string[]) =>
      Promise.all(ids.map(async (id) => (await stack.db.task.findUniqueOrThrow({ where: { id } })).state));

    test("when a person ticks the page with the keyboard and presses Retry, then a page asks with the count of failed ones, and confirming sends exactly those", async () => {
      const ids = await tasks("bulk-browser", ["FAILURE", "SUCCESS", "FAILURE", "PENDING"]);
      const page = await pageWith();
      await page.goto(`${stack.url}/tasks?breed=bulk-browser`);
      // The box that ticks the whole page comes with the script; Space ticks it as any checkbox.
      await page.focus("#select-page");
      await page.keyboard.press("Space");
      assert.equal(await page.locator('#tasks-table input[name="ids"]:checked').count(), 4);
      assert.equal(await page.textContent('[data-role="ticked-count"]'), " (4)");
      // One box unticked by keyboard: the page box is then neither.
      await page.focus(`#select-${ids[3]}`);
      await page.keyboard.press("Space");
      assert.equal(await page.locator("#select-page").evaluate((box: HTMLInputElement) => box.indeterminate), true);
      await page.focus("#bulk-retry");
      await page.keyboard.press("Enter");
      await page.waitForURL(/\/tasks\/bulk$/);
      assert.match((await page.textContent("h1")) ?? "", /Retry 2 tasks\?/);
      assert.match((await page.textContent("#bulk-skipped")) ?? "", /1 SUCCESS/);
      await page.screenshot({ path: path.join(SCREENSHOTS, "bulk-confirm.png"), fullPage: true });
      assert.deepEqual(await statesOf(ids), ["FAILURE", "SUCCESS", "FAILURE", "PENDING"], "asking changes nothing");

      await page.click("#bulk-confirm-button");
      await page.waitForURL(/\/tasks\?breed=bulk-browser&bulk=retry/);
      assert.match(
        (await page.textContent("#monitor-notice")) ?? "",
        /Sent 2 tasks again, each with a new retry budget\. 1 skipped/,
      );
      assert.deepEqual(await statesOf(ids), ["PENDING", "SUCCESS", "PENDING", "PENDING"]);
      await page.screenshot({ path: path.join(SCREENSHOTS, "bulk-done.png"), fullPage: false });
      await page.context().close();
    });

    test("when a person without JavaScript cancels all tasks matching a search, then the form asks with the count and cancels only the waiting ones", async () => {
      const ids = await tasks("bulk-nojs", ["PENDING", "PENDING", "SUCCESS"]);
      const page = await pageWith({ script: false });
      await page.goto(`${stack.url}/tasks?breed=bulk-nojs`);
      assert.equal(await page.isVisible("#select-page"), false, "without a script the page box is not offered");
      await page.check("#bulk-scope-search");
      assert.match((await page.textContent("label:has(#bulk-scope-search)")) ?? "", /all 3 matching this search/);
      await page.click("#bulk-cancel");
      await page.waitForURL(/\/tasks\/bulk$/);
      assert.match((await page.textContent("h1")) ?? "", /Cancel 2 tasks\?/);
      assert.match((await page.textContent("#bulk-summary")) ?? "", /3 tasks match the search/);
      // Someone adds a waiting task meanwhile: the confirmed count no longer holds.
      await tasks("bulk-nojs", ["PENDING"]);
      await page.click("#bulk-confirm-button");
      await page.waitForURL(/\/tasks\?breed=bulk-nojs&changed=3&expected=2&at=tasks-list/);
      assert.match(
        (await page.textContent("#monitor-notice")) ?? "",
        /Nothing was done: you confirmed 2, but 3 match now/,
      );
      assert.deepEqual(await statesOf(ids), ["PENDING", "PENDING", "SUCCESS"]);
      await page.context().close();
    });

    test("when a person tabs onto the history chart, then each step is focused in turn and named by its values", async () => {
      const page = await pageWith();
      await page.goto(`${stack.url}/tasks`);
      const points = page.locator(".history-chart .chart-point");
      assert.ok((await points.count()) >= 15);
      await points.last().focus();
      const label = await page.evaluate(() => document.activeElement?.getAttribute("aria-label"));
      assert.match(
        label ?? "",
        /^\d{4}-\d\d-\d\d \d\d:\d\d UTC: submitted \d+(\.\d+)?, succeeded [\d.]+, failed [\d.]+, retried [\d.]+ per minute$/,
      );
      assert.equal(await points.last().locator("title").textContent(), label, "the same words show on hover");
      await page.keyboard.press("Shift+Tab");
      assert.notEqual(
        await page.evaluate(() => document.activeElement?.getAttribute("aria-label")),
        label,
        "the step before takes focus",
      );
      await page.locator("#history").screenshot({ path: path.join(SCREENSHOTS, "chart-focus.png") });
      await page.context().close();
    });
  },
);
