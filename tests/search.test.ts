// Searching all of history from the monitor and the API: error text, a time range, totals.
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, type Stack } from "./support/stack.ts";

describe("searching tasks", () => {
  let stack: Stack;
  // Tasks of this test's own breed, so nothing else matches its searches.
  const breed = "whippet";
  const ids: Record<string, string> = {};
  before(async () => {
    stack = await startStack({ workers: 0 });
    const rows = [
      {
        key: "old500",
        state: "FAILURE",
        error: "gave up after 5 attempts: dog.ceo answered 500 Internal Server Error",
        createdAt: "2026-01-10T12:00:00Z",
      },
      {
        key: "new500",
        state: "FAILURE",
        error: "gave up after 5 attempts: dog.ceo answered 500 Internal Server Error",
        createdAt: "2026-03-05T08:30:00Z",
      },
      {
        key: "timeout",
        state: "FAILURE",
        error: "gave up after 5 attempts: dog.ceo did not answer within 10 s (headers timeout)",
        createdAt: "2026-03-06T09:00:00Z",
      },
      { key: "ok", state: "SUCCESS", error: null, createdAt: "2026-03-07T10:00:00Z" },
    ] as const;
    for (const row of rows) {
      ids[row.key] = randomUUID();
      await stack.db.task.create({
        data: {
          id: ids[row.key]!,
          breed,
          limit: 1,
          state: row.state,
          error: row.error,
          createdAt: new Date(row.createdAt),
          finishedAt: new Date(row.createdAt),
        },
      });
    }
  });
  after(async () => {
    await stack?.stop();
  });

  const search = async (query: string) =>
    (await stack.http().get(`/api/tasks?breed=${breed}&${query}`).expect(200)).body as {
      tasks: { id: string }[];
      total: number;
    };

  test("when the API is asked for tasks whose error says something, then it lists exactly those, with their total", async () => {
    const found = await search("error=500");
    assert.deepEqual(
      found.tasks.map((t) => t.id),
      [ids.new500, ids.old500],
    );
    assert.equal(found.total, 2);
    assert.deepEqual(
      (await search("error=headers%20timeout")).tasks.map((t) => t.id),
      [ids.timeout],
    );
    // % would match every task: refused, not run.
    const wildcard = await stack.http().get(`/api/tasks?breed=${breed}&error=100%25`).expect(400);
    assert.equal(wildcard.body.error.field, "error");
  });

  test("when the API is asked for a time range, then it lists the tasks created in it, and pages keep the total", async () => {
    const march = await search("from=2026-03-01&to=2026-03-06");
    assert.deepEqual(
      march.tasks.map((t) => t.id),
      [ids.timeout, ids.new500],
    );
    const page = await search("from=2026-01-01T00:00Z&limit=1");
    assert.equal(page.tasks.length, 1);
    assert.equal(page.total, 4);
    for (const [query, field] of [
      ["from=yesterday", "from"],
      ["to=2026-13-45", "to"],
      [`error=${"x".repeat(101)}`, "error"],
    ]) {
      const res = await stack.http().get(`/api/tasks?${query}`).expect(400);
      assert.equal(res.body.error.field, field, query);
    }
  });

  test("when the monitor is searched, then it says how many match, and its totals by state count that search and link to it in each state", async () => {
    const page = (await stack.http().get(`/tasks?breed=${breed}&error=500`).expect(200)).text;
    assert.match(page, /id="tasks-total">2 tasks match this search</);
    assert.equal([...page.matchAll(/<tr data-task-id="([^"]+)"/g)].length, 2);
    const totals = Object.fromEntries(
      [...page.matchAll(/data-total="(\w+)">(\d+)</g)].map((m) => [m[1], Number(m[2])]),
    );
    assert.deepEqual(totals, { all: 2, PENDING: 0, STARTED: 0, RETRY: 0, SUCCESS: 0, FAILURE: 2, REVOKED: 0 });
    const links = Object.fromEntries(
      [...page.matchAll(/<a class="tag[^"]*" href="([^"]+)"[^>]*>(\w+)&nbsp;/g)].map((m) => [
        m[2],
        m[1]!.replaceAll("&amp;", "&"),
      ]),
    );
    assert.equal(links.all, `/tasks?breed=${breed}&error=500`);
    assert.equal(links.failure, `/tasks?state=FAILURE&breed=${breed}&error=500`);
    // In one state, the tags still count the whole search: they say what each state would find.
    const failures = (await stack.http().get(links.success!).expect(200)).text;
    assert.match(failures, /id="tasks-total">0 tasks match this search</);
    assert.match(failures, /data-total="FAILURE">2</);
    // Without a search, the totals are every task's.
    const plain = (await stack.http().get("/tasks").expect(200)).text;
    assert.equal(Number(/data-total="all">(\d+)</.exec(plain)?.[1]), await stack.db.task.count());
  });

  test("when the monitor is searched for an id no task can have, then it is the search page again, the filter kept and the problem beside its field", async () => {
    const res = await stack.http().get(`/tasks?breed=${breed}&id=zz%25`).expect(400);
    assert.doesNotMatch(res.text, /Something went wrong/);
    assert.match(res.text, /id="filter-id" value="zz%"[^>]*aria-invalid="true" aria-describedby="filter-id-error"/);
    assert.match(
      res.text,
      /<p class="help is-danger" id="filter-id-error" data-error-for="id">An id prefix holds only hex digits/,
    );
    assert.match(res.text, new RegExp(`id="filter-breed" value="${breed}"`));
    assert.match(res.text, /id="queue-panel"/, "the rest of the monitor is there");
  });

  test("when one day is both from and until, then the tasks created that day are found; reversed dates are refused beside the field", async () => {
    assert.deepEqual(
      (await search("from=2026-03-07&to=2026-03-07")).tasks.map((t) => t.id),
      [ids.ok],
    );
    const api = await stack.http().get(`/api/tasks?from=2026-03-07&to=2026-03-05`).expect(400);
    assert.equal(api.body.error.field, "to");
    const page = await stack.http().get(`/tasks?from=2026-03-07&to=2026-03-05`).expect(400);
    assert.match(page.text, /data-error-for="to">“Until” comes before “from”/);
    assert.match(page.text, /id="filter-from" value="2026-03-07"/);
  });

  test('when the breed is searched as the pages write it, "hound (afghan)", then it finds the same tasks as hound/afghan', async () => {
    const afghan = randomUUID();
    await stack.db.task.create({
      data: {
        id: afghan,
        breed: "hound",
        subBreed: "afghan",
        limit: 1,
        state: "SUCCESS",
        createdAt: new Date("2025-06-01T00:00:00Z"),
      },
    });
    for (const breed of ["hound/afghan", "hound (afghan)", " Hound ( Afghan ) "]) {
      const found = (
        await stack
          .http()
          .get(`/api/tasks?breed=${encodeURIComponent(breed)}`)
          .expect(200)
      ).body;
      assert.deepEqual(
        found.tasks.map((t: { id: string }) => t.id),
        [afghan],
        breed,
      );
    }
    assert.match(
      (
        await stack
          .http()
          .get(`/tasks?breed=${encodeURIComponent("hound (afghan)")}`)
          .expect(200)
      ).text,
      /id="tasks-total">1 task matches this search</,
    );
    await stack.db.task.delete({ where: { id: afghan } });
  });
  test("when the list is read oldest first and paged both ways, then every page holds the tasks it should, forwards and back", async () => {
    const order = [ids.old500, ids.new500, ids.timeout, ids.ok];
    const first = (await stack.http().get(`/api/tasks?breed=${breed}&order=oldest&limit=2`).expect(200)).body;
    assert.deepEqual(
      first.tasks.map((t: { id: string }) => t.id),
      order.slice(0, 2),
    );
    assert.equal(first.prevCursor, null, "nothing before the first page");
    const second = (
      await stack.http().get(`/api/tasks?breed=${breed}&order=oldest&limit=2&cursor=${first.nextCursor}`).expect(200)
    ).body;
    assert.deepEqual(
      second.tasks.map((t: { id: string }) => t.id),
      order.slice(2),
    );
    assert.equal(second.nextCursor, null);
    const back = (
      await stack.http().get(`/api/tasks?breed=${breed}&order=oldest&limit=2&before=${second.prevCursor}`).expect(200)
    ).body;
    assert.deepEqual(
      back.tasks.map((t: { id: string }) => t.id),
      order.slice(0, 2),
    );
    assert.deepEqual([back.prevCursor, back.nextCursor], [null, order[1]]);
    // Newest first, one at a time, back from the oldest.
    const newest = (await stack.http().get(`/api/tasks?breed=${breed}&limit=1&before=${ids.old500}`).expect(200)).body;
    assert.deepEqual(
      newest.tasks.map((t: { id: string }) => t.id),
      [ids.new500],
    );
    assert.equal(newest.prevCursor, ids.new500);
    await stack.http().get(`/api/tasks?order=sideways`).expect(400);

    const page = (await stack.http().get(`/tasks?breed=${breed}&order=oldest&cursor=${ids.old500}`).expect(200)).text;
    assert.match(page, /aria-sort="ascending"/);
    assert.match(
      page,
      new RegExp(`id="prev-tasks" href="/tasks\\?breed=${breed}&amp;before=${ids.new500}&amp;order=oldest"`),
    );
    assert.match(page, /These are the newest tasks\./);
  });
});

describe("paging the monitor's list", () => {
  let stack: Stack;
  const ids: string[] = [];
  before(async () => {
    stack = await startStack({ workers: 0 });
    // 60 tasks a minute apart, newest last.
    for (let i = 0; i < 60; i++) ids.push(randomUUID());
    await stack.db.task.createMany({
      data: ids.map((id, i) => ({
        id,
        breed: "beagle",
        limit: 1,
        state: "SUCCESS" as const,
        createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)),
      })),
    });
  });
  after(async () => {
    await stack?.stop();
  });

  const totalLine = (html: string) => /id="tasks-total">([^<]*)</.exec(html)?.[1];
  const link = (html: string, id: string) =>
    new RegExp(`id="${id}" href="([^"]+)"`).exec(html)?.[1]?.replaceAll("&amp;", "&");

  test("when a person pages through a search, then each page says which of the matches it shows, forwards and back", async () => {
    const first = (await stack.http().get("/tasks?breed=beagle").expect(200)).text;
    assert.equal(totalLine(first), "1–25 of 60 tasks matching this search, newest first");
    const second = (await stack.http().get(link(first, "older-tasks")!).expect(200)).text;
    assert.equal(totalLine(second), "26–50 of 60 tasks matching this search, newest first");
    const third = (await stack.http().get(link(second, "older-tasks")!).expect(200)).text;
    assert.equal(totalLine(third), "51–60 of 60 tasks matching this search, newest first");
    const back = (await stack.http().get(link(third, "prev-tasks")!).expect(200)).text;
    assert.equal(totalLine(back), "26–50 of 60 tasks matching this search, newest first");
    const oldest = (await stack.http().get("/tasks?breed=beagle&order=oldest").expect(200)).text;
    const oldestNext = (await stack.http().get(link(oldest, "older-tasks")!).expect(200)).text;
    assert.equal(totalLine(oldestNext), "26–50 of 60 tasks matching this search, oldest first");
    // Unfiltered, the same words without "matching this search".
    const plain = (
      await stack
        .http()
        .get(link((await stack.http().get("/tasks").expect(200)).text, "older-tasks")!)
        .expect(200)
    ).text;
    assert.equal(totalLine(plain), "26–50 of 60 tasks, newest first");
  });
});
