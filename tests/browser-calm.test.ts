/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Live pages that stay calm, in a real browser: they do not fetch themselves while nothing
// happens, keep the reader's focus and place, follow the task they were opened for, and
// send one task per press of Submit.
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { startStack, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe(
  "calm live pages in a real browser",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({ workers: 1 });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
      });
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    async function open(
      path: string,
      viewport = { width: 1280, height: 900 },
    ): Promise<{ page: Page; fetches: string[]; problems: string[] }> {
      const page = await browser.newPage({ viewport });
      const problems: string[] = [];
      page.on("console", (msg) => msg.type() === "error" && problems.push(msg.text()));
      page.on("pageerror", (err) => problems.push(err.message));
      await page.goto(`${stack.url}${path}`);
      await page.waitForSelector("#live-indicator[data-state=live]", { timeout: 10_000 });
      // What the page fetches by itself from now on (its own HTML, to redraw).
      const fetches: string[] = [];
      page.on(
        "request",
        (req) => req.resourceType() === "fetch" && !req.url().includes("/events") && fetches.push(req.url()),
      );
      return { page, fetches, problems };
    }

    const submit = async (breed: string, limit: number) =>
      (await stack.http().post("/api/tasks").send({ breed, limit }).expect(202)).body.id as string;

    test("when nothing happens, then neither the home page nor the monitor fetches itself, and a change makes each redraw once it happens", async () => {
      const home = await open("/");
      const monitor = await open("/tasks");
      // Longer than the old 3 s poll and the old fetch after the first snapshot.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      assert.deepEqual(home.fetches, [], "the home page stayed put");
      assert.deepEqual(monitor.fetches, [], "the monitor stayed put");

      const taskId = await submit("pug", 2);
      await waitForTaskState(stack.db, taskId, ["SUCCESS"]);
      await home.page.waitForSelector(`#recent-tasks tr[data-task-id="${taskId}"] [data-state=SUCCESS]`, {
        timeout: 10_000,
      });
      await monitor.page.waitForSelector(`#tasks-table tr[data-task-id="${taskId}"] [data-state=SUCCESS]`, {
        timeout: 10_000,
      });
      assert.ok(home.fetches.length >= 1 && monitor.fetches.length >= 1, "both redrew for the change");
      assert.deepEqual([...home.problems, ...monitor.problems], []);
      await home.page.close();
      await monitor.page.close();
    });

    test("when a live update redraws the task list, then the link that had keyboard focus keeps it", async () => {
      const first = await submit("pug", 1);
      await waitForTaskState(stack.db, first, ["SUCCESS"]);
      const { page } = await open("/tasks");
      const link = `#tasks-table a[href="/tasks/${first}"]`;
      await page.focus(link);
      const second = await submit("pug", 1);
      await page.waitForSelector(`#tasks-table tr[data-task-id="${second}"] [data-state=SUCCESS]`, { timeout: 10_000 });
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("href")), `/tasks/${first}`);
      assert.equal(
        await page.evaluate(() => document.activeElement?.closest("#tasks-table") !== null),
        true,
        "the focused link is the one in the fresh table",
      );
      await page.close();
    });

    test("when the reader is scrolled down the gallery and new photos arrive, then what they look at stays put until they ask for the new ones", async () => {
      await stack.http().delete("/api/photos").set("Content-Type", "application/json").expect(200);
      const seed = await submit("hound", 24);
      await waitForTaskState(stack.db, seed, ["SUCCESS"]);
      const { page } = await open("/", { width: 1000, height: 700 });
      await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
      const anchor = await page.evaluate(() => {
        const figure = [...document.querySelectorAll<HTMLElement>("#gallery figure[data-photo-id]")].find(
          (f) => f.getBoundingClientRect().top > 0,
        )!;
        return { id: figure.dataset.photoId!, top: Math.round(figure.getBoundingClientRect().top) };
      });

      const next = await submit("kelpie", 3);
      await waitForTaskState(stack.db, next, ["SUCCESS"]);
      await page.waitForSelector("#new-photos:not([hidden])", { timeout: 10_000 });
      assert.equal(await page.textContent("#new-photos [data-count]"), "3 new photos");
      const after = await page.evaluate(
        (id) => Math.round(document.querySelector(`figure[data-photo-id="${id}"]`)!.getBoundingClientRect().top),
        anchor.id,
      );
      assert.equal(after, anchor.top, "the photo being looked at did not move");
      assert.equal(await page.locator("#gallery figure[data-photo-id]").count(), 24, "the new photos wait");

      await page.click("#new-photos");
      assert.equal(await page.locator("#gallery figure[data-photo-id]").count(), 27);
      assert.equal(await page.isHidden("#new-photos"), true);
      assert.ok(
        (await page.evaluate(() => document.getElementById("gallery")!.getBoundingClientRect().top)) >= -1,
        "the gallery's top is in view",
      );
      assert.equal(
        await page.evaluate(() => document.activeElement?.closest("#gallery a.photo-link") !== null),
        true,
        "the focus went to the newest photo, not to <body>",
      );
      await page.close();
    });

    test("when a person submits, then the banner follows the task to the end, the news is announced, and a double press sends one task", async () => {
      const { page, problems } = await open("/");
      const before = await stack.db.task.count();
      stack.fake.failNext("slow", 1, { delayMs: 2000 });
      await page.selectOption("#breed", "pug");
      await page.fill("#limit", "3");
      // Two presses in a row, as an impatient person (or a bouncing key) makes them.
      await Promise.all([
        page.waitForNavigation(),
        page.evaluate(() =>
          [1, 2].forEach(() => document.querySelector<HTMLFormElement>("#task-form")!.requestSubmit()),
        ),
      ]);
      const taskId = (await page.getAttribute("[data-follow-task]", "data-follow-task"))!;
      assert.match(await page.textContent("#flash").then((t) => t ?? ""), /Fetching 3 × pug/);
      // Where its photos will go, until they come.
      assert.equal(await page.locator("#gallery .is-placeholder").count(), 3);
      assert.equal(await page.textContent(`[data-progress-for="${taskId}"]`), "pug: 0 of 3 photos so far");
      await page.waitForFunction(
        () => document.getElementById("flash")?.textContent?.includes("Done: 3 photos"),
        undefined,
        { timeout: 10_000 },
      );
      await page.waitForFunction(
        () => document.getElementById("announcer")?.textContent === "pug task finished with 3 photos.",
        undefined,
        { timeout: 5000 },
      );
      assert.equal(
        await page.locator("#gallery .is-placeholder").count(),
        0,
        "the placeholders gave way to the photos",
      );
      assert.equal(await stack.db.task.count(), before + 1, "one task for two presses");
      assert.equal((await waitForTaskState(stack.db, taskId, ["SUCCESS"])).photoCount, 3);
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("when a person opens a photo, then it shows large in a dialog that Esc closes, and focus returns to the photo", async () => {
      const taskId = await submit("kelpie", 2);
      await waitForTaskState(stack.db, taskId, ["SUCCESS"]);
      const { page, problems } = await open(`/tasks/${taskId}`);
      const link = page.locator("#gallery a.photo-link").first();
      const url = await link.getAttribute("href");
      await link.focus();
      await page.keyboard.press("Enter");
      await page.waitForSelector("#photo-viewer[open]");
      assert.equal(await page.getAttribute("#photo-viewer img", "src"), url);
      assert.match((await page.textContent(".photo-viewer-caption")) ?? "", /^kelpie, photo \S+$/);
      await page.keyboard.press("Escape");
      await page.waitForSelector("#photo-viewer:not([open])", { state: "attached" });
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("href")), url);
      assert.equal(new URL(page.url()).pathname, `/tasks/${taskId}`, "the page stayed");
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("when a form is refused, then it comes back at / with focus on the first field to fix, and a reload does not post it again", async () => {
      const { page, problems } = await open("/");
      const before = await stack.db.task.count();
      await page.fill("#limit", "0");
      await Promise.all([page.waitForNavigation(), page.click("#task-form button[type=submit]")]);
      assert.equal(new URL(page.url()).pathname, "/");
      assert.equal(
        await page.evaluate(() => document.activeElement?.id),
        "breed",
        "focus is on the first field to fix",
      );
      assert.equal(await page.getAttribute("#breed", "aria-invalid"), "true");
      assert.equal(await page.getAttribute("nav a[aria-current=page]", "href"), "/", "the nav says Gallery");
      const reload = await page.reload();
      assert.equal(reload?.request().method(), "GET");
      assert.equal(await stack.db.task.count(), before, "nothing was sent");
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("when a person on a phone submits, then the gallery starts within the first screen", async () => {
      const { page, problems } = await open("/", { width: 390, height: 844 });
      await page.selectOption("#breed", "pug");
      await page.fill("#limit", "2");
      await Promise.all([page.waitForNavigation(), page.click("#task-form button[type=submit]")]);
      await page.waitForSelector("#flash");
      const top = await page.evaluate(() => document.getElementById("gallery")!.getBoundingClientRect().top);
      assert.ok(top < 844, `the gallery starts ${Math.round(top)} px down a 844 px screen`);
      const wide = await page.evaluate(() =>
        [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > 390.5)
          .map((e) => `${e.tagName}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`),
      );
      assert.deepEqual(wide, [], "nothing reaches past the screen's edge");
      // Nor when the live tag says its longest ("reconnecting…"), on a narrower phone too.
      await page.setViewportSize({ width: 360, height: 780 });
      await page.evaluate(() => (document.getElementById("live-indicator")!.textContent = "reconnecting…"));
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 360);
      assert.deepEqual(problems, []);
      await page.close();
    });
  },
);
