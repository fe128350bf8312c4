/// <reference lib="dom" />
// In a real browser: a page whose live stream first connects more than 256 KB of events
// after the page was made takes a snapshot and stays live, instead of being cut off and
// coming back for the same every 2 s.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser, type Route } from "playwright-core";
import { forgeEventsOnce } from "./support/exchange.ts";
import { startStack, waitFor, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** A valid photos event of ~52 KB: 25 photos, each with a link of ~2,000 characters. */
function photosEvent() {
  return JSON.stringify({
    type: "photos",
    taskId: randomUUID(),
    photos: Array.from({ length: 25 }, (_, i) => ({
      id: i + 1,
      url: `https://images.dog.ceo/breeds/pug/${"x".repeat(1990)}.jpg`,
      breed: "pug",
      subBreed: null,
      label: "Pug",
      createdAt: new Date().toISOString(),
    })),
  });
}

/** The last event id the web had heard when it made its home page. */
async function liveFrom(stack: Stack): Promise<number> {
  const { text } = await stack.http().get("/").expect(200);
  return Number(/data-live-from="[0-9a-f]+-(\d+)"/.exec(text)?.[1]);
}

describe(
  "in a real browser, when the page's stream connects far behind",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({ workers: 0 });
      // A page that connects before the web has its broker would hear nothing until then.
      await waitFor("the web's broker", async () => (await stack.http().get("/readyz")).status === 200);
      // A web says whether a worker runs only once it is a few seconds old; had it changed its
      // mind while the page was open, the page would redraw for that too, not for the snapshot.
      await waitFor(
        "the web to say no worker runs",
        async () => (await stack.http().get("/")).text.includes("No worker is running"),
        15_000,
      );
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
      });
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    test(
      "then it gets a snapshot, reloads what it shows once and stays live on one stream",
      { timeout: 60_000 },
      async () => {
        const page = await browser.newPage();
        try {
          const streams: string[] = [];
          const reloads: string[] = [];
          page.on("request", (req) => {
            const url = new URL(req.url());
            if (url.pathname === "/events") streams.push(url.search);
            else if (url.pathname === "/" && req.resourceType() === "fetch") reloads.push(url.href);
          });
          // The page's first connect waits until the events below have come.
          let held: Route | undefined;
          let released = false;
          await page.route("**/events?*", (route) => (released ? route.continue() : void (held = route)));
          await page.goto(`${stack.url}/`);
          await waitFor("the page's stream to be asked for", () => held);
          const madeAfter = await liveFrom(stack);

          await forgeEventsOnce(
            stack.config.queueName,
            Array.from({ length: 6 }, () => ["task.photos", photosEvent()]),
          );
          await waitFor("the web to hear them", async () => (await liveFrom(stack)) >= madeAfter + 6);

          released = true;
          await held!.continue();
          await page.waitForSelector("#live-indicator[data-state=live]", { timeout: 10_000 });
          await waitFor("the page to reload what it shows", () => reloads.length >= 1);
          await page.waitForTimeout(5000); // two of a browser's reconnects
          assert.equal(await page.getAttribute("#live-indicator", "data-state"), "live");
          assert.equal(streams.length, 1, `one stream, never cut off: ${JSON.stringify(streams)}`);
          assert.equal(reloads.length, 1, "reloaded once");
        } finally {
          await page.close();
        }
      },
    );
  },
);
