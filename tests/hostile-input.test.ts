// Hostile input to the form and the API: odd types and encodings, traversal, markup,
// SQL-ish text, prototype keys, oversize and mistyped bodies, forged CSRF tokens. Each is
// refused with a 4xx and a clear message, nothing is written or published, no stack
// trace leaks, and the app keeps working afterwards. Also the shared rate limit.
import http from "node:http";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertNothingAccepted, csrfTokenFrom, queueDepth, startStack, waitFor, type Stack } from "./support/stack.ts";

const RANGE = "The limit must be a whole number from 1 to 50.";
const NO_LIMIT = "Give a limit: a whole number from 1 to 50.";
const SHAPE = 'A breed is lower-case letters only, like "hound" or "hound/afghan".';
const NOT_TEXT = "The breed must be text.";
const CSRF = "This form has expired or did not come from GenDog. Go back, reload the page and try again.";
const TOO_LARGE = "The request body is too large.";
const TOO_MANY = "The request has too many fields.";
const NOT_JSON = "The request body is not valid JSON.";
const JSON_ONLY = "Send requests that change something as application/json.";
const XSS = "<script>alert(1)</script>";
const IMG_XSS = '"><img src=x onerror=alert(1)>';

interface Reply {
  status: number;
  type: string;
  text: string;
}

/** A request as sent on the wire, for bodies supertest would dress up (no content type at all). */
function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, base),
      { method, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), text }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function unescapeHtml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** What the page tells the person: the field messages of the form, or the error page's message. */
function pageMessages(html: string): string[] {
  const fields = [...html.matchAll(/data-error-for="[a-z]+">([^<]*)<\/p>/g)].map((m) => unescapeHtml(m[1]!));
  const page = [...html.matchAll(/id="error-message">([^<]*)<\/p>/g)].map((m) => unescapeHtml(m[1]!));
  return [...fields, ...page];
}

function assertNoInternals(text: string) {
  assert.ok(!/\n\s+at /.test(text), "no stack trace lines");
  assert.ok(!text.includes("/work/"), "no file paths");
  assert.ok(!text.includes("node_modules"), "no module paths");
  assert.ok(!/prisma|SqliteError|TypeError|SyntaxError/i.test(text), "no internal error names");
}

type FormBody = Record<string, string> | [string, string][] | string;

interface FormCase {
  name: string;
  /** The body to post; "TOKEN" in it is replaced by a valid CSRF token of the same browser. */
  body: FormBody;
  status: number;
  message: string;
  csrf?: "valid" | "none";
}

interface ApiCase {
  name: string;
  /** An object is sent as JSON; a string is sent as it is with the content type given. */
  body: unknown;
  contentType?: string | null;
  status: number;
  code: string;
  message?: string;
  field?: string;
}

const formCases: FormCase[] = [
  { name: "a full-width digit limit (５)", body: { breed: "hound", limit: "５" }, status: 400, message: RANGE },
  { name: "an Arabic-Indic digit limit (٥)", body: { breed: "hound", limit: "٥" }, status: 400, message: RANGE },
  { name: "an exponent limit (1e1)", body: { breed: "hound", limit: "1e1" }, status: 400, message: RANGE },
  { name: "a hex limit (0x10)", body: { breed: "hound", limit: "0x10" }, status: 400, message: RANGE },
  { name: "a negative zero limit", body: { breed: "hound", limit: "-0" }, status: 400, message: RANGE },
  { name: "a huge limit", body: { breed: "hound", limit: "9".repeat(400) }, status: 400, message: RANGE },
  { name: "a limit with a NUL byte", body: { breed: "hound", limit: "5\u0000" }, status: 400, message: RANGE },
  {
    name: "a limit with SQL after it",
    body: { breed: "hound", limit: "5; DROP TABLE Task" },
    status: 400,
    message: RANGE,
  },
  { name: "markup in the limit", body: { breed: "hound", limit: IMG_XSS }, status: 400, message: RANGE },
  {
    name: "two limits",
    body: [
      ["breed", "hound"],
      ["limit", "5"],
      ["limit", "6"],
    ],
    status: 400,
    message: RANGE,
  },
  { name: "an RTL override in the breed", body: { breed: "\u202Ehound", limit: "5" }, status: 400, message: SHAPE },
  { name: "an emoji breed", body: { breed: "🐶", limit: "5" }, status: 400, message: SHAPE },
  { name: "a breed with a NUL byte", body: { breed: "hound\u0000", limit: "5" }, status: 400, message: SHAPE },
  {
    name: "a path traversal breed (../../etc/passwd)",
    body: { breed: "../../etc/passwd", limit: "5" },
    status: 400,
    message: SHAPE,
  },
  {
    name: "a percent-encoded traversal breed (%2e%2e%2f)",
    body: { breed: "%2e%2e%2f", limit: "5" },
    status: 400,
    message: SHAPE,
  },
  {
    name: "a traversal breed decoded by the form parser",
    body: "breed=%2e%2e%2fpug&limit=5&_csrf=TOKEN",
    status: 400,
    message: SHAPE,
  },
  {
    name: "a breed walking up a level (hound/../pug)",
    body: { breed: "hound/../pug", limit: "5" },
    status: 400,
    message: SHAPE,
  },
  { name: "a script tag breed", body: { breed: XSS, limit: "5" }, status: 400, message: SHAPE },
  { name: "an img onerror breed", body: { breed: IMG_XSS, limit: "5" }, status: 400, message: SHAPE },
  { name: "an SQL-ish breed", body: { breed: "hound' OR 1=1 --", limit: "5" }, status: 400, message: SHAPE },
  { name: "the breed __proto__", body: { breed: "__proto__", limit: "5" }, status: 400, message: SHAPE },
  {
    name: "the breed constructor",
    body: { breed: "constructor", limit: "5" },
    status: 400,
    message: 'dog.ceo has no breed "constructor".',
  },
  {
    name: "the breed hasOwnProperty",
    body: { breed: "hasOwnProperty", limit: "5" },
    status: 400,
    message: 'dog.ceo has no breed "hasownproperty".',
  },
  {
    name: "a __proto__ field instead of a breed",
    body: "__proto__=hound&constructor=pug&limit=5&_csrf=TOKEN",
    status: 400,
    message: "Pick a breed.",
  },
  {
    name: "two breeds",
    body: [
      ["breed", "hound"],
      ["breed", "pug"],
      ["limit", "5"],
    ],
    status: 400,
    message: NOT_TEXT,
  },
  { name: "bracketed field names", body: "breed[]=hound&limit[]=5&_csrf=TOKEN", status: 400, message: "Pick a breed." },
  {
    name: "a body over 4kb",
    body: { breed: "hound", limit: "5", pad: "a".repeat(5000) },
    status: 413,
    message: TOO_LARGE,
  },
  {
    name: "too many form fields",
    body: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}`, "x"])),
    status: 413,
    message: TOO_MANY,
  },
  { name: "no CSRF token", body: { breed: "hound", limit: "5" }, csrf: "none", status: 403, message: CSRF },
  {
    name: "a forged CSRF token",
    body: { breed: "hound", limit: "5", _csrf: "forged-token" },
    csrf: "none",
    status: 403,
    message: CSRF,
  },
  {
    name: "markup as the CSRF token",
    body: { breed: "hound", limit: "5", _csrf: XSS },
    csrf: "none",
    status: 403,
    message: CSRF,
  },
  {
    name: "two CSRF tokens",
    body: [
      ["breed", "hound"],
      ["limit", "5"],
      ["_csrf", "TOKEN"],
      ["_csrf", "TOKEN"],
    ],
    csrf: "none",
    status: 403,
    message: CSRF,
  },
];

const apiCases: ApiCase[] = [
  {
    name: "limit is an array",
    body: { breed: "hound", limit: [5] },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is an object",
    body: { breed: "hound", limit: { value: 5 } },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is a boolean",
    body: { breed: "hound", limit: true },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is null",
    body: { breed: "hound", limit: null },
    status: 400,
    code: "invalid_input",
    message: NO_LIMIT,
    field: "limit",
  },
  {
    name: "limit is a digit string",
    body: { breed: "hound", limit: "5" },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is 1e308",
    body: { breed: "hound", limit: 1e308 },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit overflows to Infinity (1e400)",
    body: '{"breed":"hound","limit":1e400}',
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is past the safe integers",
    body: '{"breed":"hound","limit":9007199254740993}',
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is negative zero",
    body: '{"breed":"hound","limit":-0}',
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is the string 1e1",
    body: { breed: "hound", limit: "1e1" },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is the string 0x10",
    body: { breed: "hound", limit: "0x10" },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is a full-width digit",
    body: { breed: "hound", limit: "５" },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is 50.5",
    body: { breed: "hound", limit: 50.5 },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is markup",
    body: { breed: "hound", limit: XSS },
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "limit is given twice, the last a string",
    body: '{"breed":"hound","limit":5,"limit":"5"}',
    status: 400,
    code: "invalid_input",
    message: RANGE,
    field: "limit",
  },
  {
    name: "breed is an array",
    body: { breed: ["hound"], limit: 5 },
    status: 400,
    code: "invalid_input",
    message: NOT_TEXT,
    field: "breed",
  },
  {
    name: "breed is an object",
    body: { breed: { name: "hound" }, limit: 5 },
    status: 400,
    code: "invalid_input",
    message: NOT_TEXT,
    field: "breed",
  },
  {
    name: "breed is a boolean",
    body: { breed: true, limit: 5 },
    status: 400,
    code: "invalid_input",
    message: NOT_TEXT,
    field: "breed",
  },
  {
    name: "breed is null",
    body: { breed: null, limit: 5 },
    status: 400,
    code: "invalid_input",
    message: "Pick a breed.",
    field: "breed",
  },
  {
    name: "subBreed is an array",
    body: { breed: "hound", subBreed: ["afghan"], limit: 5 },
    status: 400,
    code: "invalid_input",
    message: "The sub-breed must be text.",
    field: "breed",
  },
  {
    name: "subBreed is an object",
    body: { breed: "hound", subBreed: {}, limit: 5 },
    status: 400,
    code: "invalid_input",
    message: "The sub-breed must be text.",
    field: "breed",
  },
  {
    name: "breed has an RTL override",
    body: { breed: "hound\u202E", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed has an emoji",
    body: { breed: "hound🐶", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed has a NUL byte",
    body: { breed: "hound\u0000", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is ../../etc/passwd",
    body: { breed: "../../etc/passwd", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is %2e%2e%2f",
    body: { breed: "%2e%2e%2f", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is hound/../pug",
    body: { breed: "hound/../pug", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "subBreed is ../afghan",
    body: { breed: "hound", subBreed: "../afghan", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is a script tag",
    body: { breed: XSS, limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "subBreed is an img onerror",
    body: { breed: "hound", subBreed: IMG_XSS, limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is SQL-ish",
    body: { breed: "hound' OR 1=1 --", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "subBreed is SQL-ish",
    body: { breed: "hound", subBreed: "afghan' OR '1'='1", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is 1000 letters",
    body: { breed: "a".repeat(1000), limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is __proto__",
    body: { breed: "__proto__", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: SHAPE,
    field: "breed",
  },
  {
    name: "breed is constructor",
    body: { breed: "constructor", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: 'dog.ceo has no breed "constructor".',
    field: "breed",
  },
  {
    name: "breed is hasOwnProperty",
    body: { breed: "hasOwnProperty", limit: 5 },
    status: 400,
    code: "invalid_input",
    message: 'dog.ceo has no breed "hasownproperty".',
    field: "breed",
  },
  {
    name: "the fields hide under __proto__",
    body: '{"__proto__":{"breed":"hound","limit":5,"polluted":1}}',
    status: 400,
    code: "invalid_input",
    message: "Pick a breed.",
    field: "breed",
  },
  {
    name: "the limit hides under constructor.prototype",
    body: '{"breed":"hound","constructor":{"prototype":{"limit":5,"polluted":1}}}',
    status: 400,
    code: "invalid_input",
    message: NO_LIMIT,
    field: "limit",
  },
  {
    name: "the body is a JSON array",
    body: '[{"breed":"hound","limit":5}]',
    status: 400,
    code: "invalid_input",
    message: "Pick a breed.",
    field: "breed",
  },
  { name: "the body is a JSON string", body: '"hound"', status: 400, code: "invalid_json", message: NOT_JSON },
  { name: "the body is JSON null", body: "null", status: 400, code: "invalid_json", message: NOT_JSON },
  { name: "the JSON is cut short", body: '{"breed":"hound",', status: 400, code: "invalid_json", message: NOT_JSON },
  {
    name: "the JSON uses single quotes",
    body: "{'breed':'hound','limit':5}",
    status: 400,
    code: "invalid_json",
    message: NOT_JSON,
  },
  {
    name: "the JSON is over 4kb",
    body: { breed: "hound", limit: 5, pad: "a".repeat(5000) },
    status: 413,
    code: "too_large",
    message: TOO_LARGE,
  },
  {
    name: "the body is text/plain",
    body: '{"breed":"hound","limit":5}',
    contentType: "text/plain",
    status: 415,
    code: "unsupported_media_type",
    message: JSON_ONLY,
  },
  {
    name: "the body is form-urlencoded",
    body: "breed=hound&limit=5",
    contentType: "application/x-www-form-urlencoded",
    status: 415,
    code: "unsupported_media_type",
    message: JSON_ONLY,
  },
  {
    name: "the body is multipart",
    body: '--b\r\nContent-Disposition: form-data; name="breed"\r\n\r\nhound\r\n--b--\r\n',
    contentType: "multipart/form-data; boundary=b",
    status: 415,
    code: "unsupported_media_type",
    message: JSON_ONLY,
  },
  {
    name: "the body is XML",
    body: "<task><breed>hound</breed></task>",
    contentType: "application/xml",
    status: 415,
    code: "unsupported_media_type",
    message: JSON_ONLY,
  },
  {
    name: "the body has no content type",
    body: '{"breed":"hound","limit":5}',
    contentType: null,
    status: 415,
    code: "unsupported_media_type",
    message: JSON_ONLY,
  },
  {
    name: "the JSON claims a latin1 charset",
    body: '{"breed":"hound","limit":5}',
    contentType: "application/json; charset=latin1",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "the JSON claims a UTF-16 charset it is not in",
    body: '{"breed":"hound","limit":5}',
    contentType: "application/json; charset=utf-16",
    status: 400,
    code: "invalid_json",
    message: NOT_JSON,
  },
];

describe("hostile input", () => {
  let stack: Stack;
  let sent = 0;
  before(async () => {
    stack = await startStack({ workers: 0 });
    await waitFor("the web to reach RabbitMQ", async () => (await stack.http().get("/readyz")).status === 200);
  });
  after(async () => {
    await stack?.stop();
  });

  async function assertNothingWritten() {
    await assertNothingAccepted(stack);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype untouched");
  }

  function encodeForm(body: FormBody, token: string | undefined): string {
    if (typeof body === "string") return body.replace(/TOKEN/g, encodeURIComponent(token ?? ""));
    const pairs = Array.isArray(body)
      ? body.map(([k, v]) => [k, v === "TOKEN" ? (token ?? "") : v])
      : Object.entries(body);
    const params = new URLSearchParams(pairs);
    if (token && !params.has("_csrf")) params.append("_csrf", token);
    return params.toString();
  }

  describe("to the form", () => {
    for (const c of formCases) {
      test(`when the form gets ${c.name}, it answers ${c.status} with "${c.message}" and nothing is written`, async () => {
        const agent = stack.agent();
        const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
        const posted = await agent
          .post("/tasks")
          .type("form")
          .send(encodeForm(c.body, c.csrf === "none" ? undefined : token));
        sent++;
        // A form that fails validation comes back at "/" (post/redirect/get); other refusals answer at once.
        let res = posted;
        if (c.status === 400) {
          assert.equal(posted.status, 303);
          assert.match(posted.headers.location ?? "", /^\/\?breed=/);
          res = await agent.get(posted.headers.location!.replace(/#.*/, "")).expect(200);
        } else {
          assert.equal(res.status, c.status);
        }
        assert.match(res.headers["content-type"] ?? "", /^text\/html/);
        assert.ok(pageMessages(res.text).includes(c.message), `page says ${JSON.stringify(pageMessages(res.text))}`);
        assert.ok(!res.text.includes(XSS) && !res.text.includes("<img src=x"), "no raw markup echoed");
        assertNoInternals(res.text);
        await assertNothingWritten();
      });
    }

    test("when a form carries a token from another browser, it answers 403 and nothing is written", async () => {
      const other = stack.agent();
      const othersToken = csrfTokenFrom((await other.get("/").expect(200)).text);
      const mine = stack.agent();
      await mine.get("/").expect(200);
      const res = await mine.post("/tasks").type("form").send({ breed: "hound", limit: "5", _csrf: othersToken });
      sent++;
      assert.equal(res.status, 403);
      assert.ok(pageMessages(res.text).includes(CSRF));
      await assertNothingWritten();
    });

    test("when a form carries another browser's token and CSRF cookie but its own browser id, it answers 403", async () => {
      const other = stack.agent();
      const first = await other.get("/").expect(200);
      const othersToken = csrfTokenFrom(first.text);
      const csrfCookie = (first.headers["set-cookie"] as unknown as string[])
        .find((c) => c.startsWith("gendog.csrf="))!
        .split(";")[0]!;
      const mine = await stack.http().get("/").expect(200);
      const myId = (mine.headers["set-cookie"] as unknown as string[])
        .find((c) => c.startsWith("gendog.client="))!
        .split(";")[0]!;
      const res = await stack
        .http()
        .post("/tasks")
        .set("Cookie", `${myId}; ${csrfCookie}`)
        .type("form")
        .send({ breed: "hound", limit: "5", _csrf: othersToken });
      sent++;
      assert.equal(res.status, 403);
      assert.ok(pageMessages(res.text).includes(CSRF));
      await assertNothingWritten();
    });

    test("when a form is posted with a valid token but no cookies (a cross-site post), it answers 403", async () => {
      const token = csrfTokenFrom((await stack.http().get("/").expect(200)).text);
      const res = await stack.http().post("/tasks").type("form").send({ breed: "hound", limit: "5", _csrf: token });
      sent++;
      assert.equal(res.status, 403);
      assert.ok(pageMessages(res.text).includes(CSRF));
      await assertNothingWritten();
    });

    test("when the form endpoint gets JSON, the token is not read from it and it answers 403", async () => {
      const agent = stack.agent();
      const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
      const res = await agent.post("/tasks").send({ breed: "hound", limit: "5", _csrf: token });
      sent++;
      assert.equal(res.status, 403);
      assertNoInternals(res.text);
      await assertNothingWritten();
    });
  });

  describe("to the API", () => {
    for (const c of apiCases) {
      test(`when the API gets ${c.name}, it answers ${c.status} ${c.code} and nothing is written`, async () => {
        const contentType = c.contentType === undefined ? "application/json" : c.contentType;
        const body = typeof c.body === "string" ? c.body : JSON.stringify(c.body);
        const headers: Record<string, string> = contentType === null ? {} : { "content-type": contentType };
        const res = await rawRequest(stack.url, "POST", "/api/tasks", headers, body);
        sent++;

        assert.equal(res.status, c.status, res.text);
        assert.match(res.type, /^application\/json/);
        const reply = JSON.parse(res.text) as { error: { code: string; message: string; field?: string } };
        assert.equal(reply.error.code, c.code);
        assert.equal(typeof reply.error.message, "string");
        assert.ok(reply.error.message.length > 10, "a message a person can read");
        if (c.message) assert.equal(reply.error.message, c.message);
        assert.equal(reply.error.field, c.field);
        assert.deepEqual(Object.keys(reply), ["error"]);
        assert.ok(!res.text.includes(XSS) && !res.text.includes("<img src=x"), "no raw markup echoed");
        assertNoInternals(res.text);
        await assertNothingWritten();
      });
    }
  });

  describe("afterwards", () => {
    // The four forged-token tests sit beside the two tables.
    const total = formCases.length + apiCases.length + 4;
    test(`all ${total} hostile inputs reached the app and were refused (none skipped)`, () => {
      assert.equal(sent, total);
    });

    test("when the hostile table is done, the app still serves the home page and takes a valid task", async () => {
      const page = await stack.http().get("/").expect(200);
      assert.match(page.text, /Fetch dog photos/);

      const res = await stack.http().post("/api/tasks").send({ breed: "hound", subBreed: "afghan", limit: 3 });
      assert.equal(res.status, 202);
      assert.equal(res.body.breed, "hound");
      assert.equal(await stack.db.task.count(), 1);
      await waitFor("the job on the queue", async () => (await queueDepth(stack.config.queueName)) === 1);
    });
  });
});

describe("the rate limit on new tasks", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0, env: { RATE_LIMIT_PER_MINUTE: "3" } });
    await waitFor("the web to reach RabbitMQ", async () => (await stack.http().get("/readyz")).status === 200);
  });
  after(async () => {
    await stack?.stop();
  });

  test("when a fourth task is asked for within a minute, the API answers 429 with Retry-After and the form shares the limit, kept filled and saying when to try again", async () => {
    for (let i = 0; i < 3; i++) {
      await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 }).expect(202);
    }
    assert.equal(await stack.db.task.count(), 3);

    const fourth = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 1 });
    assert.equal(fourth.status, 429);
    assert.match(fourth.headers["content-type"] ?? "", /^application\/json/);
    const wait = Number(fourth.headers["retry-after"]);
    assert.ok(wait >= 1 && wait <= 60, `Retry-After: ${fourth.headers["retry-after"]}`);
    assert.deepEqual(fourth.body, {
      error: {
        code: "rate_limited",
        message: `Too many new tasks from you: at most 3 a minute. You can submit again in ${wait} s.`,
        retryAfterSeconds: wait,
        requestId: fourth.headers["x-request-id"],
      },
    });
    assert.equal(await stack.db.task.count(), 3, "no row for the refused task");
    assert.equal(await stack.db.outboxMessage.count(), 3);

    const agent = stack.agent();
    const token = csrfTokenFrom((await agent.get("/").expect(200)).text);
    // Post/redirect/get: the form comes back at "/", never drawn at /tasks, where a reload would post it again.
    const refused = await agent
      .post("/tasks")
      .type("form")
      .send({ breed: "pug", limit: "7", _csrf: token })
      .expect(303);
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
    assert.match(refused.headers.location ?? "", /^\/\?breed=pug&limit=7&limited=\d+$/);
    const form = await agent.get(refused.headers.location!).expect(200);
    const flash =
      /id="flash"[^>]*>\s*([^]*?)<\/div>/
        .exec(form.text)?.[1]
        ?.replace(/<[^>]+>/g, "")
        .replace(/\s+/g, " ")
        .trim() ?? "";
    assert.match(
      flash,
      /^Too many new tasks from you: at most 3 a minute\. Your choice is kept below\. You can submit again in \d+ s\.$/,
      "the form page says why and when",
    );
    assert.match(form.text, /<option value="pug" selected/, "the breed is kept");
    assert.match(form.text, /name="limit" id="limit"[^>]* value="7"/, "the limit is kept");
    assertNoInternals(form.text);
    assert.equal(await stack.db.task.count(), 3, "no row for the refused form either");
    await waitFor("the three accepted jobs on the queue", async () => (await queueDepth(stack.config.queueName)) === 3);
  });
});
