/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The pages on a phone (360 and 390 px), and what the keyboard and a busy form show, in a
// real browser, measured from the laid-out page (getBoundingClientRect, scrollWidth).
// Screenshots go outside the repository, to be looked at.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.SCREENSHOTS_DIR ?? path.join(os.tmpdir(), "gendog-screenshots");
const skip = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)`;
const launch = () =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
  });

/** Visible elements that reach past the right edge of the screen, described. */
const pastTheEdge = (page: Page) =>
  page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return [...document.querySelectorAll("body *")]
      .filter((el) => el.checkVisibility() && el.getBoundingClientRect().right > width + 0.5)
      .map(
        (el) =>
          `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}.${[...el.classList].join(".")} "${(el.textContent ?? "").trim().slice(0, 30)}"`,
      );
  });

/**
 * The focused element's outline: style, width, and its contrast with the background around
 * it (WCAG 2.2's 3:1 for a focus indicator). A string, so the test runner's transform does
 * not rename the helpers inside it.
 */
const FOCUS_RING = `(() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const rgb = (css) => (css.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.map((v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let back = "rgb(255, 255, 255)";
  for (let node = el.parentElement; node; node = node.parentElement) {
    const bg = getComputedStyle(node).backgroundColor;
    if (bg !== "transparent" && !/, 0\\)$/.test(bg)) { back = bg; break; }
  }
  const [l1, l2] = [lum(rgb(style.outlineColor)), lum(rgb(back))].sort((a, b) => b - a);
  return {
    what: el.tagName.toLowerCase() + ' "' + (el.textContent || "").trim().slice(0, 20) + '"',
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    contrast: (l1 + 0.05) / (l2 + 0.05),
  };
})()`;

/** Visible elements that reach past the right edge of the box they are in. */
const pastTheirBox = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll(".box")].flatMap((box) => {
      const edge = box.getBoundingClientRect().right;
      return [...box.querySelectorAll("*")]
        .filter((el) => el.checkVisibility() && el.getBoundingClientRect().right > edge + 0.5)
        .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join(".")} in ${box.id || box.className}`);
    }),
  );

describe("on a phone", { skip }, () => {
  let stack: Stack;
  let browser: Browser;
  const ids: Record<string, string> = {};
  before(async () => {
    stack = await startStack({ workers: 0 });
    browser = await launch();
    await mkdir(SCREENSHOTS, { recursive: true });
    // A full page of tasks, the oldest of them days old (their times print as long dates) and
    // in the widest states, with the longest breed labels.
    const day = 86_400_000;
    const rows = Array.from({ length: 30 }, (_, i) => ({
      id: randomUUID(),
      breed: i % 3 === 0 ? "retriever" : "pug",
      subBreed: i % 3 === 0 ? "chesapeake" : null,
      limit: 50,
      state: (["REVOKED", "SUCCESS", "FAILURE", "PENDING"] as const)[i % 4],
      attemptCount: 3,
      photoCount: 12,
      error: i % 4 === 2 ? "gave up after 5 attempts: dog.ceo answered 500 Internal Server Error" : null,
      createdAt: new Date(Date.now() - 3 * day - i * 60_000),
      queuedAt: i % 4 === 3 ? null : new Date(Date.now() - 3 * day - i * 60_000),
    }));
    await stack.db.task.createMany({ data: rows });
    ids.revoked = rows[0]!.id;
    ids.pending = rows[3]!.id;
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test("when /tasks is opened at 360 px, then nothing reaches past the screen: the history window's choices and every task card's cells fit", async () => {
    const page = await browser.newPage({ viewport: { width: 360, height: 780 } });
    await page.goto(`${stack.url}/tasks`);
    const size = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    assert.deepEqual(await pastTheEdge(page), []);
    assert.equal(size.scroll, size.client, "the page does not scroll sideways");
    // A card's cells stay inside its card, and the list never scrolls sideways inside its box.
    const clipped = await page.evaluate(() => {
      const out: string[] = [];
      const box = document.querySelector("#tasks-list .table-container")!;
      if (box.scrollWidth > box.clientWidth)
        out.push(`the list scrolls sideways by ${box.scrollWidth - box.clientWidth} px`);
      for (const row of document.querySelectorAll("#tasks-table tbody tr")) {
        const card = row.getBoundingClientRect();
        for (const cell of row.querySelectorAll("td")) {
          const r = cell.getBoundingClientRect();
          if (r.right > card.right + 0.5 || r.left < card.left - 0.5 || cell.scrollWidth > cell.clientWidth + 1)
            out.push(
              `${cell.dataset.label} "${cell.textContent?.trim()}" of ${row.getAttribute("data-task-id")?.slice(0, 8)}`,
            );
        }
      }
      return out;
    });
    assert.deepEqual(clipped, []);
    assert.deepEqual(await pastTheirBox(page), []);
    await page.screenshot({ path: path.join(SCREENSHOTS, "phone-tasks-360.png"), fullPage: true });
    await page.close();
  });

  test("when the home page is opened at 360 px, then the recent tasks fit their box, photo counts included", async () => {
    const page = await browser.newPage({ viewport: { width: 360, height: 780 } });
    await page.goto(`${stack.url}/`);
    assert.deepEqual(await pastTheEdge(page), []);
    assert.deepEqual(await pastTheirBox(page), []);
    await page.close();
  });

  test("when /tasks is opened at 390 px, then the queue, failures and workers panels are one tap away on the first screen", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${stack.url}/tasks`);
    for (const panel of ["queue-panel", "failures", "workers-panel"]) {
      const link = page.locator(`a[href="#${panel}"]`).first();
      const box = await link.boundingBox();
      assert.ok(box && (await link.isVisible()), `a link to #${panel}`);
      assert.ok(
        box.y + box.height <= 844,
        `the link to #${panel} is on the first screen (its bottom at ${box.y + box.height} px)`,
      );
      await link.click();
      // At the top of the screen, or as near as the end of the page lets it come.
      await waitFor(
        `#${panel} scrolled into view`,
        () =>
          page.evaluate(
            (id) =>
              ((top) => top >= -1 && top + 60 <= innerHeight)(document.getElementById(id)!.getBoundingClientRect().top),
            panel,
          ),
        3000,
      );
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    await page.close();
  });

  test("when the home page shows a banner at 390 px, then the banner and the form do not overlap, and the clear-photos checkbox sits on its label's line", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${stack.url}/?submitted=${ids.pending}`);
    const { banner, form } = await page.evaluate(() => ({
      banner: document.getElementById("flash")!.getBoundingClientRect().bottom,
      form: document.querySelector(".home-form")!.getBoundingClientRect().top,
    }));
    assert.ok(banner <= form, `the banner ends at ${banner} px, the form starts at ${form} px`);
    const { box, words } = await page.evaluate(() => {
      const label = document.querySelector("#clear-form label")!;
      const range = document.createRange();
      const text = [...label.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && n.textContent!.trim())!;
      range.selectNodeContents(text);
      const r = range.getClientRects()[0]!;
      const c = label.querySelector("input")!.getBoundingClientRect();
      return {
        box: { left: c.left, right: c.right, middle: (c.top + c.bottom) / 2 },
        words: { left: r.left, top: r.top, bottom: r.bottom },
      };
    });
    assert.ok(box.right <= words.left, `the checkbox (right edge ${box.right}) comes before its words (${words.left})`);
    assert.ok(
      box.middle > words.top && box.middle < words.bottom,
      `the checkbox (middle ${box.middle}) is on the words' line (${words.top}–${words.bottom})`,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, "phone-home-banner-390.png"), fullPage: false });
    await page.close();
  });

  for (const scheme of ["light", "dark"] as const) {
    test(`when a person moves through the page with the keyboard (${scheme}), then what has focus is outlined clearly, and the nav shows which page this is`, async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: scheme });
      await page.goto(`${stack.url}/tasks`);
      const seen: string[] = [];
      for (let i = 0; i < 30; i++) {
        await page.keyboard.press("Tab");
        const ring = (await page.evaluate(FOCUS_RING)) as {
          what: string;
          style: string;
          width: number;
          contrast: number;
        };
        if (ring.style === "none" || ring.width < 2 || ring.contrast < 3)
          seen.push(`${ring.what}: ${ring.style} ${ring.width}px, contrast ${ring.contrast.toFixed(2)}`);
      }
      assert.deepEqual(
        seen,
        [],
        "every focused element has a solid outline of 2 px or more, at 3:1 against what is around it",
      );

      const nav = await page.evaluate(() => {
        return [".navbar-item[aria-current=page]", '.navbar-item[href="/"]:not(.brand)'].map((selector) => {
          const item = document.querySelector(selector)!;
          const s = getComputedStyle(item);
          // The colour seen behind it: its own, or (transparent) the first one behind it.
          let seen = s.backgroundColor;
          for (
            let node = item.parentElement;
            node && /rgba\(.*, 0\)$|transparent/.test(seen);
            node = node.parentElement
          )
            seen = getComputedStyle(node).backgroundColor;
          return [seen, s.color, s.fontWeight, s.textDecorationLine, s.borderBottomWidth, s.boxShadow].join(" | ");
        });
      });
      assert.notEqual(nav[0], nav[1], "the current page's nav item looks different from the others");
      await page.close();
    });
  }
});

describe("a person over the submit limit", { skip }, () => {
  let stack: Stack;
  let browser: Browser;
  before(async () => {
    stack = await startStack({ workers: 1, env: { RATE_LIMIT_PER_MINUTE: "1" } });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test("when they submit once too often, then they stay on the home page with their choice kept, and the wait counts down", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${stack.url}/`);
    await page.selectOption("#breed", "pug");
    await page.fill("#limit", "3");
    await page.click("#task-form button[type=submit]");
    const first = (await page.waitForSelector("[data-follow-task]").then((el) => el.getAttribute("data-follow-task")))!;
    await waitForTaskState(stack.db, first, ["SUCCESS"]);
    await page.selectOption("#breed", "hound/afghan");
    await page.fill("#limit", "4");
    await page.click("#task-form button[type=submit]");
    await page.waitForSelector("#flash [data-countdown]");
    assert.equal(
      new URL(page.url()).pathname,
      "/",
      "a reload does not post the form again, nor show the form at /tasks",
    );
    assert.equal(await page.inputValue("#breed"), "hound/afghan");
    assert.equal(await page.inputValue("#limit"), "4");
    const seconds = async () => Number(/(\d+) s/.exec((await page.textContent("#flash [data-countdown]")) ?? "")?.[1]);
    const before = await seconds();
    assert.ok(before > 0 && before <= 60, `${before} s to wait`);
    await waitFor("the wait to count down", async () => (await seconds()) < before, 5000);
    // Reloaded, the page says the time left now, not the time it said first.
    await page.waitForTimeout(1100);
    await page.reload();
    const after = await seconds();
    assert.ok(after < before, `after a reload ${after} s, first ${before} s`);
    await page.screenshot({ path: path.join(SCREENSHOTS, "phone-rate-limited-390.png") });
    await page.close();
  });
});
