/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Every page, in a real browser, on a desktop and a 390 px phone (the monitor's pages and a
// task in each state also at 360 px), in light and dark: no
// serious or critical axe-core violation, nothing that scrolls sideways, no console error
// or CSP violation. axe-core is injected as source with page.evaluate, since the strict CSP
// refuses an added <script>. Screenshots go outside the repository, to be looked at.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser } from "playwright-core";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.SCREENSHOTS_DIR ?? path.join(os.tmpdir(), "gendog-screenshots");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const VIEWS = [
  { name: "desktop", viewport: { width: 1280, height: 900 } },
  { name: "phone", viewport: { width: 390, height: 844 } },
] as const;
const NARROW = [{ name: "phone-360", viewport: { width: 360, height: 780 } }] as const;
const SCHEMES = ["light", "dark"] as const;

interface Finding {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

describe(
  "every page is accessible and fits",
  { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)` },
  () => {
    let stack: Stack;
    let browser: Browser;
    before(async () => {
      stack = await startStack({
        workers: 1,
        env: { RETRY_MAX_ATTEMPTS: "2", CONTROL_SECRET: "pagesa-test-control-secret-0123456789abcdef" },
      });
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

    /** Opens each path in every view and scheme; returns what axe and the page reported. */
    async function check(
      paths: Record<string, string>,
      views: readonly { name: string; viewport: { width: number; height: number } }[] = VIEWS,
    ): Promise<string[]> {
      const problems: string[] = [];
      for (const view of views) {
        for (const scheme of SCHEMES) {
          // Reduced motion: a running task's placeholders pulse for ever, and axe waits for stillness.
          const context = await browser.newContext({
            viewport: view.viewport,
            colorScheme: scheme,
            reducedMotion: "reduce",
          });
          const page = await context.newPage();
          let where = "";
          page.on(
            "console",
            (msg) =>
              msg.type() === "error" &&
              !/status of 404/.test(msg.text()) &&
              problems.push(`${where}: console: ${msg.text()}`),
          );
          page.on("pageerror", (err) => problems.push(`${where}: ${err.message}`));
          for (const [name, url] of Object.entries(paths)) {
            where = `${name} (${view.name}, ${scheme})`;
            await page.goto(`${stack.url}${url}`, { waitUntil: "load" });
            // Fades finish; a waiting task's placeholders pulse for as long as it waits.
            await page.waitForFunction(() =>
              document
                .getAnimations()
                .every((a) => a.playState === "finished" || a.effect?.getTiming().iterations === Infinity),
            );
            await page.evaluate(AXE);
            const findings = await page.evaluate(async () => {
              const axe = (
                window as unknown as {
                  axe: {
                    run(context: Document): Promise<{ violations: Finding[] & { nodes: { target: string[] }[] }[] }>;
                  };
                }
              ).axe;
              const { violations } = await axe.run(document);
              return violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                targets: (v as unknown as { nodes: { target: string[] }[] }).nodes.map((n) => n.target.join(" ")),
              }));
            });
            for (const f of findings.filter((f) => f.impact === "serious" || f.impact === "critical"))
              problems.push(`${where}: ${f.id} (${f.impact}) ${f.help}: ${f.targets.slice(0, 3).join(", ")}`);
            const overflow = await page.evaluate(
              () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
            );
            if (overflow > 0) problems.push(`${where}: scrolls sideways by ${overflow} px`);
            await page.screenshot({
              path: path.join(SCREENSHOTS, `a11y-${name}-${view.name}-${scheme}.png`),
              fullPage: true,
            });
          }
          await context.close();
        }
      }
      return problems;
    }

    test("when the gallery is empty, then the home page, a refused form and the error page pass", async () => {
      assert.deepEqual(
        await check({ "home-empty": "/", "refused-form": "/?breed=&limit=0", "not-found": "/no-such-page" }),
        [],
      );
    });

    test("when tasks have run, succeeded and failed, then the home page, the monitor and each task's page pass", async () => {
      const ok = (
        await stack.http().post("/api/tasks").send({ breed: "hound", subBreed: "afghan", limit: 6 }).expect(202)
      ).body.id as string;
      assert.equal((await waitForTaskState(stack.db, ok, ["SUCCESS", "FAILURE"])).state, "SUCCESS");
      stack.fake.failNext("http500", 2);
      const failed = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202)).body
        .id as string;
      assert.equal((await waitForTaskState(stack.db, failed, ["SUCCESS", "FAILURE"], 20_000)).state, "FAILURE");
      const problems = await check({
        home: "/",
        tasks: "/tasks",
        "tasks-filtered": "/tasks?state=FAILURE",
        "task-success": `/tasks/${ok}`,
        "task-failure": `/tasks/${failed}`,
        "dead-letters": "/dead-letters",
        workers: "/workers",
        "history-day": "/tasks?window=1d",
        audit: "/audit",
      });
      assert.deepEqual(problems, []);
    });

    test("when a 360 px phone opens the monitor, the workers, the dead letters and a task in each state, then each passes and fits", async () => {
      // A task in every state as its page draws it, with the attempts that state implies.
      const worker = stack.workers[0]!.id;
      const ago = (seconds: number) => new Date(Date.now() - seconds * 1000);
      const shapes = {
        PENDING: { attempts: [] },
        STARTED: { startedAt: ago(2), attempts: [{ outcome: null }] },
        RETRY: {
          startedAt: ago(5),
          retryAt: new Date(Date.now() + 60_000),
          error: "dog.ceo answered 503 Service Unavailable",
          attempts: [{ outcome: "RETRY", error: "dog.ceo answered 503 Service Unavailable", retryDelayMs: 60_000 }],
        },
        SUCCESS: { startedAt: ago(5), finishedAt: ago(4), photoCount: 0, attempts: [{ outcome: "SUCCESS" }] },
        FAILURE: {
          startedAt: ago(5),
          finishedAt: ago(4),
          error: "gave up after 2 attempts: dog.ceo answered 500 Internal Server Error",
          attempts: [
            { outcome: "RETRY", error: "dog.ceo answered 500 Internal Server Error", retryDelayMs: 100 },
            { outcome: "FAILURE", error: "dog.ceo answered 500 Internal Server Error" },
          ],
        },
        REVOKED: { finishedAt: ago(4), error: "cancelled before it ran", attempts: [] },
      } as const;
      const paths: Record<string, string> = { tasks: "/tasks", workers: "/workers", "dead-letters": "/dead-letters" };
      for (const [state, { attempts, ...times }] of Object.entries(shapes)) {
        const id = randomUUID();
        await stack.db.task.create({
          data: {
            id,
            breed: "retriever",
            subBreed: "chesapeake",
            limit: 12,
            state: state as keyof typeof shapes,
            attemptCount: attempts.length,
            createdAt: ago(10),
            queuedAt: ago(9),
            ...times,
            attempts: {
              create: attempts.map((a, i) => ({
                number: i + 1,
                workerId: worker,
                startedAt: ago(5 - i),
                finishedAt: a.outcome ? ago(4 - i) : null,
                ...a,
              })),
            },
          },
        });
        paths[`task-${state.toLowerCase()}`] = `/tasks/${id}`;
      }
      assert.deepEqual(await check(paths, NARROW), []);
    });

    test("when every worker is paused and a dead letter is settled, then the waiting notices, a panel's notice and the settled letter pass", async () => {
      stack.fake.failNext("http500", 2);
      const dead = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202)).body
        .id as string;
      await waitForTaskState(stack.db, dead, ["FAILURE"], 20_000);
      await waitFor("its dead letter", async () =>
        (await stack.http().get("/api/dead-letters").expect(200)).body.letters.some(
          (l: { taskId: string }) => l.taskId === dead,
        ),
      );
      await stack.db.task.update({ where: { id: dead }, data: { state: "SUCCESS", error: null } });
      await stack.http().post("/api/workers/pause").set("Content-Type", "application/json").send({}).expect(202);
      await waitFor("the worker paused", async () =>
        (await stack.http().get("/api/workers").expect(200)).body.workers.every((w: { paused: boolean }) => w.paused),
      );
      const waiting = (await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202)).body
        .id as string;
      try {
        const problems = await check({
          "home-paused": "/",
          "banner-paused": `/?submitted=${waiting}`,
          "task-paused": `/tasks/${waiting}`,
          "tasks-panel-notice": "/tasks?retried=2&at=failures",
          "dead-letters-settled": "/dead-letters",
        });
        assert.deepEqual(problems, []);
      } finally {
        await stack.http().post("/api/workers/resume").set("Content-Type", "application/json").send({}).expect(202);
      }
    });
  },
);
