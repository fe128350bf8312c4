// Acting on a selection of tasks (the ticked ones, or every match of a search) and sorting
// the monitor's list by any column: through the real web and database, on SQLite and on
// PostgreSQL (test:postgres), with no worker, so what the actions did stays to be read.
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { csrfTokenFrom, startStack, type Stack } from "./support/stack.ts";
import { onPostgres } from "./support/database.ts";

type State = "PENDING" | "STARTED" | "RETRY" | "SUCCESS" | "FAILURE" | "REVOKED";

describe("acting on a selection of tasks", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0 });
  });
  after(async () => {
    await stack?.stop();
  });

  /** Tasks of a breed of their own, so each test's searches find only its tasks. */
  async function tasks(breed: string, states: State[], extra: (i: number) => object = () => ({})): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, state] of states.entries()) {
      const id = randomUUID();
      const error = state === "FAILURE" || state === "RETRY" ? `dog.ceo answered 500 after ${100 + i} ms` : null;
      await stack.db.task.create({
        data: { id, breed, limit: 1, state, error, createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), ...extra(i) },
      });
      ids.push(id);
    }
    return ids;
  }
  const statesOf = async (ids: string[]) =>
    (await stack.db.task.findMany({ where: { id: { in: ids } }, orderBy: { createdAt: "asc" } })).map((t) => t.state);
  const bulk = (body: object) =>
    stack.http().post("/api/tasks/bulk").set("Content-Type", "application/json").send(body);

  test("when ticked tasks are retried, then a dry run counts the failed and revoked ones, and the confirmed retry sends exactly those and says what it skipped", async () => {
    const ids = await tasks("bulk-retry", ["FAILURE", "REVOKED", "SUCCESS", "STARTED", "FAILURE"]);
    const missing = randomUUID();
    const dry = await bulk({ action: "retry", ids: [...ids, missing] }).expect(200);
    assert.deepEqual(dry.body, {
      action: "retry",
      selected: 6,
      matched: 3,
      done: 0,
      skipped: { SUCCESS: 1, STARTED: 1, missing: 1 },
      why: "only FAILURE or REVOKED tasks can be retried",
      dryRun: true,
    });
    assert.deepEqual(
      await statesOf(ids),
      ["FAILURE", "REVOKED", "SUCCESS", "STARTED", "FAILURE"],
      "a dry run changes nothing",
    );

    const done = await bulk({ action: "retry", ids: [...ids, missing], expected: 3 }).expect(200);
    assert.equal(done.body.done, 3);
    assert.equal(done.body.dryRun, false);
    assert.deepEqual(await statesOf(ids), ["PENDING", "PENDING", "SUCCESS", "STARTED", "PENDING"]);
    const retried = await stack.db.task.findUnique({ where: { id: ids[0]! } });
    assert.match(retried!.retriedBy ?? "", /from /);
  });

  test("when every task matching a search is cancelled, then only its PENDING and RETRY tasks end REVOKED", async () => {
    const ids = await tasks("bulk-cancel", ["PENDING", "RETRY", "STARTED", "PENDING", "SUCCESS"]);
    const other = await tasks("bulk-cancel-other", ["PENDING"]);
    const dry = await bulk({ action: "cancel", search: { breed: "bulk-cancel" } }).expect(200);
    assert.equal(dry.body.selected, 5);
    assert.equal(dry.body.matched, 3);
    assert.deepEqual(dry.body.skipped, { STARTED: 1, SUCCESS: 1 });
    const done = await bulk({ action: "cancel", search: { breed: "bulk-cancel" }, expected: 3 }).expect(200);
    assert.equal(done.body.done, 3);
    assert.deepEqual(await statesOf(ids), ["REVOKED", "REVOKED", "STARTED", "REVOKED", "SUCCESS"]);
    assert.deepEqual(await statesOf(other), ["PENDING"], "a task outside the search is left alone");
  });

  test("when the count moved since the dry run, then nothing is done and the answer is 409 count_changed with the new count", async () => {
    const ids = await tasks("bulk-moved", ["FAILURE", "FAILURE"]);
    assert.equal((await bulk({ action: "retry", search: { breed: "bulk-moved" } }).expect(200)).body.matched, 2);
    await tasks("bulk-moved", ["FAILURE"]);
    const res = await bulk({ action: "retry", search: { breed: "bulk-moved" }, expected: 2 }).expect(409);
    assert.equal(res.body.error.code, "count_changed");
    assert.deepEqual(await statesOf(ids), ["FAILURE", "FAILURE"]);
  });

  test("when a selection is too large, empty or names no action, then it is refused with the field at fault", async () => {
    const tooMany = Array.from({ length: 10_001 }, () => randomUUID());
    assert.equal((await bulk({ action: "retry", ids: tooMany }).expect(400)).body.error.field, "ids");
    assert.equal((await bulk({ action: "retry", ids: [] }).expect(400)).body.error.field, "ids");
    assert.equal((await bulk({ action: "delete", ids: [randomUUID()] }).expect(400)).body.error.field, "action");
    assert.equal((await bulk({ action: "retry", ids: ["../etc"] }).expect(400)).body.error.field, "ids");
  });

  test("when tasks are ticked in the list's form, then a page asks with the count, and its button cancels them and goes back to the search with what was done", async () => {
    const ids = await tasks("bulk-form", ["PENDING", "SUCCESS", "RETRY"]);
    const agent = stack.agent();
    const list = await agent.get("/tasks?breed=bulk-form").expect(200);
    assert.match(list.text, /id="bulk-form"/);
    const token = csrfTokenFrom(list.text);
    const ask = await agent
      .post("/tasks/bulk")
      .type("form")
      .send({ _csrf: token, action: "cancel", scope: "selected", ids, breed: "bulk-form" })
      .expect(200);
    assert.match(ask.text, /Cancel 2 tasks\?/);
    assert.match(ask.text, /1 SUCCESS/);
    assert.deepEqual(await statesOf(ids), ["PENDING", "SUCCESS", "RETRY"], "asking changes nothing");
    const confirmToken = csrfTokenFrom(ask.text);
    const hidden = [...ask.text.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((m) => [
      m[1]!,
      m[2]!,
    ]);
    const form = hidden.reduce<Record<string, string | string[]>>((all, [name, value]) => {
      const had = all[name];
      all[name] = had === undefined ? value : ([] as string[]).concat(had, value);
      return all;
    }, {});
    const sent = await agent
      .post("/tasks/bulk")
      .type("form")
      .send({ ...form, _csrf: confirmToken })
      .expect(303);
    assert.match(
      sent.headers.location!,
      /^\/tasks\?breed=bulk-form&bulk=cancel&done=2&skipped=1&at=tasks-list#monitor-notice$/,
    );
    assert.deepEqual(await statesOf(ids), ["REVOKED", "SUCCESS", "REVOKED"]);
    const back = await agent.get(sent.headers.location!).expect(200);
    assert.match(back.text, /Cancelled 2 tasks\. 1 skipped: only PENDING or RETRY tasks can be cancelled/);
  });

  test("when nothing is ticked, then the list says so and nothing is done", async () => {
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/tasks").expect(200)).text);
    const res = await agent
      .post("/tasks/bulk")
      .type("form")
      .send({ _csrf: token, action: "retry", scope: "selected" })
      .expect(303);
    assert.match(res.headers.location!, /refused=none-ticked/);
  });
});

describe("acting on a selection with ADMIN_PASSWORD set", () => {
  const PASSWORD = "correct horse battery staple";
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { ADMIN_PASSWORD: PASSWORD } });
  });
  after(async () => {
    await stack?.stop();
  });

  test("when someone without the password asks, then the API and the form answer 401 and no task changes", async () => {
    const id = randomUUID();
    await stack.db.task.create({ data: { id, breed: "bulk-guard", limit: 1, state: "FAILURE", error: "x" } });
    await stack
      .http()
      .post("/api/tasks/bulk")
      .set("Content-Type", "application/json")
      .send({ action: "retry", ids: [id] })
      .expect(401);
    await stack
      .http()
      .post("/api/tasks/bulk")
      .set("Content-Type", "application/json")
      .send({ action: "retry", ids: [id], expected: 1 })
      .expect(401);
    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/tasks").expect(200)).text);
    await agent
      .post("/tasks/bulk")
      .type("form")
      .send({ _csrf: token, action: "retry", scope: "selected", ids: id, expected: "1" })
      .expect(401);
    assert.equal((await stack.db.task.findUniqueOrThrow({ where: { id } })).state, "FAILURE");
    const basic = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString("base64")}`;
    const res = await stack
      .http()
      .post("/api/tasks/bulk")
      .set("Authorization", basic)
      .set("Content-Type", "application/json")
      .send({ action: "retry", ids: [id], expected: 1 })
      .expect(200);
    assert.equal(res.body.done, 1);
  });
});

describe("sorting the task list by any column", () => {
  let stack: Stack;
  const breed = "sort-check";
  const made: { id: string; state: State; limit: number; photoCount: number; attemptCount: number; createdAt: Date }[] =
    [];
  before(async () => {
    stack = await startStack({ workers: 0 });
    const states: State[] = [
      "SUCCESS",
      "FAILURE",
      "PENDING",
      "RETRY",
      "REVOKED",
      "STARTED",
      "FAILURE",
      "SUCCESS",
      "PENDING",
    ];
    for (const [i, state] of states.entries()) {
      // Ties on purpose (limits 1-3, photos 0-2): paging must order within them too.
      const row = {
        id: randomUUID(),
        state,
        limit: (i % 3) + 1,
        photoCount: (i * 2) % 3,
        attemptCount: i % 4,
        createdAt: new Date(Date.UTC(2026, 1, 1, 0, i)),
      };
      made.push(row);
      await stack.db.task.create({
        data: {
          ...row,
          breed,
          error:
            state === "FAILURE"
              ? `gave up: dog.ceo answered 500 Internal Server Error ${"and more words ".repeat(10)}(${i})`
              : null,
        },
      });
    }
  });
  after(async () => {
    await stack?.stop();
  });

  // The order each database sorts states in: PostgreSQL by the enum's declaration, SQLite by name.
  const STATE_ORDER = onPostgres
    ? ["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]
    : ["FAILURE", "PENDING", "RETRY", "REVOKED", "STARTED", "SUCCESS"];
  const key = {
    state: (t: (typeof made)[number]) => STATE_ORDER.indexOf(t.state),
    limit: (t: (typeof made)[number]) => t.limit,
    photos: (t: (typeof made)[number]) => t.photoCount,
    attempts: (t: (typeof made)[number]) => t.attemptCount,
  };
  const expected = (column: keyof typeof key, order: "asc" | "desc") => {
    const sign = order === "asc" ? 1 : -1;
    return [...made]
      .sort(
        (a, b) =>
          sign *
          (key[column](a) - key[column](b) || a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1)),
      )
      .map((t) => t.id);
  };

  for (const column of ["state", "limit", "photos", "attempts"] as const) {
    for (const order of ["asc", "desc"] as const) {
      test(`when the list is sorted by ${column} ${order === "asc" ? "ascending" : "descending"} and paged by cursor both ways, then every task shows once, in that order`, async () => {
        const pageOf = async (extra: string) =>
          (
            await stack
              .http()
              .get(`/api/tasks?breed=${breed}&sort=${column}&order=${order}&limit=2${extra}`)
              .expect(200)
          ).body;
        const seen: string[] = [];
        let page = await pageOf("");
        const pages = [page];
        seen.push(...page.tasks.map((t: { id: string }) => t.id));
        while (page.nextCursor) {
          page = await pageOf(`&cursor=${page.nextCursor}`);
          pages.push(page);
          seen.push(...page.tasks.map((t: { id: string }) => t.id));
        }
        assert.deepEqual(seen, expected(column, order));
        assert.deepEqual(
          pages.map((p) => p.offset),
          [0, 2, 4, 6, 8],
          "each page says where it starts",
        );
        // Back from the last page, one page at a time: the same pages in reverse.
        let back = pages[pages.length - 1];
        for (let i = pages.length - 2; i >= 0; i--) {
          back = await pageOf(`&before=${back.prevCursor}`);
          assert.deepEqual(back.tasks, pages[i].tasks);
        }
      });
    }
  }

  test("when the page is sorted by a column, then its header says so, the links keep the search and flip the direction, and a failure's error shows shortened in the list", async () => {
    const page = await stack.http().get(`/tasks?breed=${breed}&sort=limit&order=asc`).expect(200);
    assert.match(
      page.text,
      /<th class="has-text-right" aria-sort="ascending"><a href="\/tasks\?breed=sort-check&amp;order=desc&amp;sort=limit" class="sort-link" data-sort="limit">Limit/,
    );
    assert.match(
      page.text,
      /<a href="\/tasks\?breed=sort-check&amp;order=asc&amp;sort=state" class="sort-link" data-sort="state">/,
    );
    // The filter keeps the order, and on a phone (no headers) is where it is chosen.
    assert.match(page.text, /<option value="limit" selected>limit<\/option>/);
    assert.match(page.text, /<option value="asc" selected>/);
    const shown = [...page.text.matchAll(/<span class="task-error is-size-7" data-role="error">([^<]*)<\/span>/g)].map(
      (m) => m[1]!,
    );
    assert.equal(shown.length, 2);
    for (const error of shown) {
      assert.ok(error.startsWith("gave up: dog.ceo answered 500"), error);
      assert.ok(error.length <= 81 && error.endsWith("…"), error);
    }
  });

  test("when a sort names no column of the list, then the search page says so beside the form", async () => {
    const res = await stack.http().get("/api/tasks?sort=password").expect(400);
    assert.equal(res.body.error.field, "sort");
    const page = await stack.http().get("/tasks?sort=password").expect(400);
    assert.match(page.text, /data-error-for="sort"/);
  });
});
