/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// A live refresh keeps the reader's place, in a real browser: the button that had the
// keyboard focus keeps it, an opened "As a table" stays open; and a page that lost touch
// with the web says its panels may be out of date instead of going on claiming them.
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { startTcpProxy, type TcpProxy } from "./support/faults.ts";
import { startStack, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe(
  "live pages keep the reader's place",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    let proxy: TcpProxy;
    before(async () => {
      stack = await startStack({ workers: 1 });
      proxy = await startTcpProxy(stack.web!.port);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
      });
    });
    after(async () => {
      await browser?.close();
      await proxy?.close();
      await stack?.stop();
    });

    async function open(path: string, base = stack.url): Promise<Page> {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}${path}`);
      await page.waitForSelector("#live-indicator[data-state=live]", { timeout: 10_000 });
      return page;
    }

    /** Marks the regions, so the test knows when a refresh replaced them. */
    const mark = (page: Page, ids: string[]) =>
      page.evaluate((list) => list.forEach((id) => (document.getElementById(id)!.dataset.before = "yes")), ids);
    const replaced = (page: Page, ids: string[]) =>
      page.waitForFunction((list) => list.every((id) => !document.getElementById(id)?.dataset.before), ids, {
        timeout: 20_000,
      });

    const submit = async (limit: number) =>
      (await stack.http().post("/api/tasks").send({ breed: "pug", limit }).expect(202)).body.id as string;

    test("when tasks run while the reader is on Pause all with the history table open, then both survive the refresh", async () => {
      const page = await open("/tasks");
      await page.click("details.history-table summary");
      await page.focus('#workers-panel form[action="/workers/pause"]:not(:has(input[name=worker])) button');
      await mark(page, ["workers-panel", "history"]);
      await waitForTaskState(stack.db, await submit(3), ["SUCCESS"]);
      await replaced(page, ["workers-panel", "history"]);
      assert.equal(
        await page.evaluate(() => document.activeElement?.textContent?.trim()),
        "Pause all",
        "the focus stayed on Pause all",
      );
      assert.equal(await page.evaluate(() => document.activeElement?.closest("#workers-panel") !== null), true);
      assert.equal(
        await page.evaluate(() => document.querySelector<HTMLDetailsElement>("details.history-table")!.open),
        true,
        "As a table stayed open",
      );
      await page.close();
    });

    test("when a worker's numbers change while the reader is on its Pause button on /workers, then the focus stays there", async () => {
      const page = await open("/workers");
      const worker = await page.getAttribute("#workers-table tr[data-worker-id]", "data-worker-id");
      await page.focus(`#workers-table tr[data-worker-id="${worker}"] form button`);
      await mark(page, ["workers-table"]);
      await waitForTaskState(stack.db, await submit(2), ["SUCCESS"]);
      await replaced(page, ["workers-table"]);
      assert.equal(await page.evaluate(() => document.activeElement?.closest("tr")?.dataset.workerId), worker);
      assert.match((await page.evaluate(() => document.activeElement?.textContent)) ?? "", /^Pause/);
      await page.close();
    });

    test("when a task dies while the dead letters page is open, then its letter appears there without a reload, with its error", async () => {
      const page = await open("/dead-letters");
      stack.fake.failNext("http500", 5);
      const id = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body.id as string;
      await waitForTaskState(stack.db, id, ["FAILURE"], 20_000);
      await page.waitForSelector(`#dead-letters tr:has(a[href="/tasks/${id}"])`, { timeout: 20_000 });
      assert.match(
        (await page.textContent(`#dead-letters tr:has(a[href="/tasks/${id}"]) [data-label="Why"]`)) ?? "",
        /500/,
      );
      await page.close();
    });

    test("when the page loses touch with the web, then it says its panels may be out of date, and stops saying so once back", async () => {
      const page = await open("/tasks", `http://127.0.0.1:${proxy.port}`);
      assert.equal(await page.isHidden("#stale-notice"), true);
      await proxy.cut({ refuse: true });
      await page.waitForSelector("#stale-notice:not([hidden])", { timeout: 15_000 });
      assert.match((await page.textContent("#stale-notice")) ?? "", /may be out of date/);
      assert.equal(
        await page.evaluate(() => document.getElementById("queue-panel")!.classList.contains("is-out-of-date")),
        true,
        "the queue panel is greyed",
      );
      await proxy.restore();
      await page.waitForSelector("#stale-notice", { state: "hidden", timeout: 40_000 });
      assert.equal(await page.evaluate(() => document.querySelector(".is-out-of-date")), null);
      await page.close();
    });
  },
);
