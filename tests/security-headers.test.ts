// What every response promises the browser (CSP and friends), pages that CSP would not
// break, error pages without internals, and the broker password kept out of every reply.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Response } from "supertest";
import { AMQP_URL, csrfTokenFrom, startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

/** The CSP header as directive -> sources. */
function csp(res: Response): Map<string, string[]> {
  const header = res.headers["content-security-policy"];
  assert.ok(header, "no Content-Security-Policy header");
  return new Map(
    String(header)
      .split(";")
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

function assertInlineFree(html: string, page: string) {
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    assert.match(m[1]!, /\ssrc="\/static\//, `${page}: a script without a same-origin src: ${m[0].slice(0, 120)}`);
    assert.equal(m[2]!.trim(), "", `${page}: an inline script body: ${m[0].slice(0, 120)}`);
  }
  assert.ok(!/<[a-z][^>]*\sstyle\s*=/i.test(html), `${page}: a style= attribute`);
  assert.ok(!/<style\b/i.test(html), `${page}: an inline <style> block`);
  assert.ok(!/<[a-z][^>]*\son[a-z]+\s*=/i.test(html), `${page}: an inline on* event handler`);
}

function assertNoInternals(text: string, page: string) {
  assert.ok(!/\n\s+at /.test(text), `${page}: a stack trace line`);
  assert.ok(!text.includes("/work/"), `${page}: a file path`);
  assert.ok(!text.includes("node_modules"), `${page}: a module path`);
  assert.ok(!/prisma|SqliteError|no such table/i.test(text), `${page}: internal error details`);
}

describe("security headers and pages", () => {
  let stack: Stack;
  let taskId: string;
  before(async () => {
    // The broker URL is given explicitly, password and all, so the test below means something.
    stack = await startStack({ workers: 1, env: { AMQP_URL: "amqp://guest:guest@127.0.0.1:5672" } });
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const res = await agent
      .post("/tasks")
      .type("form")
      .send({ breed: "hound/afghan", limit: "3", _csrf: token })
      .expect(303);
    taskId = new URL(res.headers.location!, "http://x").searchParams.get("submitted")!;
    assert.equal((await waitForTaskState(stack.db, taskId, ["SUCCESS", "FAILURE"])).state, "SUCCESS");
  });
  after(async () => {
    await stack?.stop();
  });

  const paths = [
    ["the home page", "/", 200],
    ["the task monitor", "/tasks", 200],
    ["a 404 page", "/no-such-page", 404],
    ["the task API", "/api/tasks", 200],
  ] as const;

  for (const [name, path, status] of paths) {
    test(`when ${name} is fetched, it carries a strict Content-Security-Policy`, async () => {
      const res = await stack.http().get(path);
      assert.equal(res.status, status);
      const policy = csp(res);
      assert.deepEqual(policy.get("default-src"), ["'self'"]);
      assert.deepEqual(policy.get("script-src"), ["'self'"]);
      assert.deepEqual(policy.get("style-src"), ["'self'"]);
      assert.deepEqual(policy.get("object-src"), ["'none'"]);
      assert.deepEqual(policy.get("frame-ancestors"), ["'none'"]);
      for (const [directive, sources] of policy) {
        assert.ok(
          !sources.includes("'unsafe-inline'") && !sources.includes("'unsafe-eval'"),
          `${directive} allows ${sources.join(" ")}`,
        );
      }
      const img = policy.get("img-src") ?? [];
      assert.ok(img.includes("https://images.dog.ceo"), `img-src: ${img.join(" ")}`);
      assert.ok(img.includes(stack.fake.origin), `img-src lacks the stand-in ${stack.fake.origin}: ${img.join(" ")}`);
      assert.ok(
        !img.includes("*") && !img.includes("http:") && !img.includes("https:"),
        `img-src too wide: ${img.join(" ")}`,
      );
    });

    test(`when ${name} is fetched, it carries nosniff, a referrer policy and framing protection, and no X-Powered-By`, async () => {
      const res = await stack.http().get(path);
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.ok(res.headers["referrer-policy"], "Referrer-Policy");
      assert.ok(
        res.headers["x-frame-options"] || csp(res).get("frame-ancestors")?.includes("'none'"),
        "framing protection",
      );
      assert.equal(res.headers["x-powered-by"], undefined);
    });
  }

  test("when any page is rendered, it has no inline scripts, styles or handlers that the CSP would block", async () => {
    const pages: [string, number][] = [
      ["/", 200],
      ["/tasks", 200],
      [`/tasks/${taskId}`, 200],
      ["/no-such-page", 404],
      ["/tasks/00000000-0000-4000-8000-000000000000", 404],
    ];
    for (const [path, status] of pages) {
      const res = await stack.http().get(path).expect(status);
      assert.match(res.headers["content-type"] ?? "", /^text\/html/);
      assertInlineFree(res.text, path);
    }
    // The task page is the real thing: its photos are there.
    const task = await stack.http().get(`/tasks/${taskId}`);
    assert.equal([...task.text.matchAll(/<img [^>]*src="http:\/\/127\.0\.0\.1:\d+\/images\//g)].length, 3);
  });

  test("when a form is refused, the page with the messages is inline-free too", async () => {
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    const posted = await agent.post("/tasks").type("form").send({ breed: "", limit: "0", _csrf: token }).expect(303);
    const res = await agent.get(posted.headers.location!.replace(/#.*/, "")).expect(200);
    assert.match(res.text, /aria-invalid="true"/);
    assertInlineFree(res.text, "the refused form");
  });

  test("when a 404 is shown, it has no stack trace or file paths", async () => {
    for (const path of ["/no-such-page", "/tasks/not-a-uuid", "/api/nowhere", "/api/tasks/not-a-uuid"]) {
      const res = await stack.http().get(path).expect(404);
      assertNoInternals(res.text, path);
    }
  });

  test("when the broker URL holds a password, no page or API reply shows it", async () => {
    assert.ok(stack.config.amqpUrl.includes(":guest@"));
    await waitFor(
      "a worker heartbeat",
      async () => ((await stack.http().get("/api/workers")).body.workers ?? []).length > 0,
    );
    for (const path of [
      "/api/queue",
      "/readyz",
      "/healthz",
      "/",
      "/tasks",
      `/tasks/${taskId}`,
      "/api/workers",
      "/api/tasks",
    ]) {
      const res = await stack.http().get(path);
      assert.ok(res.status < 500 || path === "/api/queue", `${path}: ${res.status}`);
      assert.ok(!res.text.includes(":guest@"), `${path} shows the broker password`);
      assert.ok(!res.text.includes(AMQP_URL), `${path} shows the broker URL`);
    }
  });
});

describe("in production", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { NODE_ENV: "production" } });
  });
  after(async () => {
    await stack?.stop();
  });

  test("when a page is not found, the 404 page says so plainly with no stack", async () => {
    const res = await stack.http().get("/no-such-page").expect(404);
    assert.match(res.text, /There is no page here\./);
    assertNoInternals(res.text, "404");
    const api = await stack.http().get("/api/nowhere").expect(404);
    assert.deepEqual(api.body, {
      error: { code: "not_found", message: "There is no such API endpoint.", requestId: api.headers["x-request-id"] },
    });
  });

  test("when a URL cannot be decoded, it answers 400 with no stack", async () => {
    const res = await stack.http().get("/tasks/%E0%A4%A");
    assert.equal(res.status, 400);
    assertNoInternals(res.text, "bad URL");
  });

  test("when the database fails under a page, it answers 500 with a plain message and no details", async () => {
    // Break the database under the running app: the tasks table goes away.
    await stack.db.$executeRawUnsafe('ALTER TABLE "Task" RENAME TO "Task_gone"');
    try {
      const page = await stack.http().get("/tasks");
      assert.equal(page.status, 500);
      assert.match(page.headers["content-type"] ?? "", /^text\/html/);
      assert.match(page.text, /Something went wrong on our side\. Try again in a moment\./);
      assertNoInternals(page.text, "500 page");
      assertInlineFree(page.text, "500 page");

      const api = await stack.http().get("/api/tasks");
      assert.equal(api.status, 500);
      assert.deepEqual(api.body, {
        error: {
          code: "internal",
          message: "Something went wrong on our side. Try again in a moment.",
          requestId: api.headers["x-request-id"],
        },
      });
      assertNoInternals(api.text, "500 JSON");
    } finally {
      await stack.db.$executeRawUnsafe('ALTER TABLE "Task_gone" RENAME TO "Task"');
    }
  });
});
