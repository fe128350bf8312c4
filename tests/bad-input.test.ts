// Bad input through the real app, form and API: each is refused with the right message
// on the right field, and nothing reaches the database or the queue.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertNothingAccepted, csrfTokenFrom, startStack, waitFor, type Stack } from "./support/stack.ts";

const RANGE = "The limit must be a whole number from 1 to 50.";
const NO_LIMIT = "Give a limit: a whole number from 1 to 50.";
const SHAPE = 'A breed is lower-case letters only, like "hound" or "hound/afghan".';
const XSS = "<script>alert(1)</script>";

interface Case {
  name: string;
  fields: Record<string, string>;
  json: Record<string, unknown>;
  errors: Record<string, string>;
}

const cases: Case[] = [
  {
    name: "the limit is 0",
    fields: { breed: "hound", limit: "0" },
    json: { breed: "hound", limit: 0 },
    errors: { limit: RANGE },
  },
  {
    name: "the limit is 51",
    fields: { breed: "hound", limit: "51" },
    json: { breed: "hound", limit: 51 },
    errors: { limit: RANGE },
  },
  {
    name: "the limit is -1",
    fields: { breed: "hound", limit: "-1" },
    json: { breed: "hound", limit: -1 },
    errors: { limit: RANGE },
  },
  {
    name: "the limit is abc",
    fields: { breed: "hound", limit: "abc" },
    json: { breed: "hound", limit: "abc" },
    errors: { limit: RANGE },
  },
  {
    name: "the limit is 1.5",
    fields: { breed: "hound", limit: "1.5" },
    json: { breed: "hound", limit: 1.5 },
    errors: { limit: RANGE },
  },
  {
    name: "the limit is empty",
    fields: { breed: "hound", limit: "" },
    json: { breed: "hound", limit: "" },
    errors: { limit: NO_LIMIT },
  },
  {
    name: "the limit is 10^20",
    fields: { breed: "hound", limit: "100000000000000000000" },
    json: { breed: "hound", limit: 1e20 },
    errors: { limit: RANGE },
  },
  {
    name: "the limit is a script tag",
    fields: { breed: "hound", limit: XSS },
    json: { breed: "hound", limit: XSS },
    errors: { limit: RANGE },
  },
  {
    name: "the breed is nope",
    fields: { breed: "nope", limit: "5" },
    json: { breed: "nope", limit: 5 },
    errors: { breed: 'dog.ceo has no breed "nope".' },
  },
  {
    name: "the breed is ../x",
    fields: { breed: "../x", limit: "5" },
    json: { breed: "../x", limit: 5 },
    errors: { breed: SHAPE },
  },
  {
    name: "the sub-breed does not exist (hound/nope)",
    fields: { breed: "hound/nope", limit: "5" },
    json: { breed: "hound/nope", limit: 5 },
    errors: { breed: 'dog.ceo has no sub-breed "nope" of "hound".' },
  },
  {
    name: "the breed is a script tag",
    fields: { breed: XSS, limit: "5" },
    json: { breed: XSS, limit: 5 },
    errors: { breed: SHAPE },
  },
  { name: "the breed is missing", fields: { limit: "5" }, json: { limit: 5 }, errors: { breed: "Pick a breed." } },
  { name: "the limit is missing", fields: { breed: "hound" }, json: { breed: "hound" }, errors: { limit: NO_LIMIT } },
  { name: "both fields are missing", fields: {}, json: {}, errors: { breed: "Pick a breed.", limit: NO_LIMIT } },
];

function unescapeHtml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** The message shown beside a form field, or undefined when there is none. */
function fieldError(html: string, field: string): string | undefined {
  const match = new RegExp(`<p class="help is-danger" id="${field}-error" data-error-for="${field}">([^<]*)</p>`).exec(
    html,
  );
  return match ? unescapeHtml(match[1]!) : undefined;
}

describe("bad input", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0 });
    await waitFor("the web to reach RabbitMQ", async () => (await stack.http().get("/readyz")).status === 200);
  });
  after(async () => {
    await stack?.stop();
  });

  describe("through the form", () => {
    for (const c of cases) {
      const fields = Object.keys(c.errors).join(" and ");
      test(`when ${c.name}, the form comes back at / (a reload does not post it again), says so beside the ${fields} field, and nothing is queued`, async () => {
        const agent = stack.agent();
        const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
        const posted = await agent
          .post("/tasks")
          .type("form")
          .send({ ...c.fields, _csrf: token });
        assert.equal(posted.status, 303);
        const location = new URL(posted.headers.location ?? "", stack.url);
        assert.equal(location.pathname, "/");
        assert.equal(location.hash, "", "no fragment: it would stop the browser focusing the first field to fix");
        const res = await agent.get(`${location.pathname}${location.search}`);

        assert.equal(res.status, 200);
        assert.match(res.headers["content-type"] ?? "", /^text\/html/);
        for (const field of ["breed", "limit"]) {
          assert.equal(fieldError(res.text, field), c.errors[field], `the message beside ${field}`);
          const control = new RegExp(`<(?:select|input)[^>]*name="${field}"[^>]*aria-invalid="true"`);
          assert.equal(control.test(res.text), field in c.errors, `${field} marked invalid`);
        }
        // Focus starts on the first field that needs fixing, without any script.
        const focused = [...res.text.matchAll(/<(?:select|input)[^>]*name="(\w+)"[^>]*autofocus/g)].map((m) => m[1]);
        assert.deepEqual(focused, [["breed", "limit"].find((f) => f in c.errors)]);
        assert.ok(!res.text.includes(XSS), "no raw script tag in the page");
        if (c.fields.limit === XSS)
          assert.match(
            res.text,
            /value="&lt;script&gt;alert\(1\)&lt;\/s/,
            "the typed limit is shown back (cut to 20 characters), escaped",
          );
        // The page is still a usable form with a fresh token.
        assert.ok(csrfTokenFrom(res.text));
        await assertNothingAccepted(stack);
      });
    }

    test("when a form sends the sub-breed apart from the breed and is refused, then the form comes back with that sub-breed chosen", async () => {
      const agent = stack.agent();
      const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
      const posted = await agent
        .post("/tasks")
        .type("form")
        .send({ breed: "hound", subBreed: "afghan", limit: "0", _csrf: token })
        .expect(303);
      const res = await agent.get(posted.headers.location ?? "/").expect(200);
      assert.deepEqual(
        [...res.text.matchAll(/<option value="([^"]*)" selected>/g)].map((m) => m[1]),
        ["hound/afghan"],
      );
      assert.equal(fieldError(res.text, "limit"), RANGE);
      await assertNothingAccepted(stack);
    });
  });

  describe("through the JSON API", () => {
    for (const c of cases) {
      const field = Object.keys(c.errors)[0]!;
      test(`when ${c.name}, POST /api/tasks answers 400 invalid_input naming ${field}, and nothing is queued`, async () => {
        const res = await stack.http().post("/api/tasks").set("Accept", "application/json").send(c.json);

        assert.equal(res.status, 400);
        assert.match(res.headers["content-type"] ?? "", /^application\/json/);
        assert.deepEqual(res.body, {
          error: { code: "invalid_input", message: c.errors[field], field, requestId: res.headers["x-request-id"] },
        });
        assert.ok(!res.text.includes(XSS));
        await assertNothingAccepted(stack);
      });
    }
  });
});
