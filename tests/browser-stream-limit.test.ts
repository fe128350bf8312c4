/// <reference lib="dom" />
// In a real browser: a page whose live stream is refused (the client's streams are used
// up) waits as long as the server's Retry-After says, instead of knocking every few seconds.
import { existsSync } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser } from "playwright-core";
import { startStack, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe(
  "in a real browser, when the live stream is refused",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    let held: http.ClientRequest;
    before(async () => {
      stack = await startStack({ workers: 0, env: { EVENT_STREAMS_PER_CLIENT: "1" } });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
      });
      // This test holds the one stream 127.0.0.1 may have.
      await new Promise<void>((resolve) => {
        held = http.get(`${stack.url}/events`, { agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          resolve();
        });
      });
    });
    after(async () => {
      held?.destroy();
      await browser?.close();
      await stack?.stop();
    });

    test("then the page says it is reconnecting, asks when it may come back, and does not open another stream before then", async () => {
      const page = await browser.newPage();
      const asked: string[] = [];
      page.on("request", (req) => new URL(req.url()).pathname === "/events" && asked.push(req.method()));
      const refusals: number[] = [];
      page.on("response", (res) => new URL(res.url()).pathname === "/events" && refusals.push(res.status()));
      await page.goto(`${stack.url}/`);
      await page.waitForSelector("#live-indicator[data-state=reconnecting]", { timeout: 10_000 });
      // Past the 5 s the page used to wait whatever the server said.
      await page.waitForTimeout(7000);
      assert.deepEqual(asked, ["GET", "HEAD"], "one refused stream, one question, no second stream yet");
      assert.deepEqual(refusals, [429, 429]);
      await page.close();
    });
  },
);
