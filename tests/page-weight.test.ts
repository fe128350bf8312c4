// What a page costs over the wire: compressed as the browser asks, its stylesheet and
// script linked by a fingerprint of their content and kept for a year, so a first visit
// stays small and a repeat visit fetches only the page.
import http from "node:http";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startStack, type Stack } from "./support/stack.ts";

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Bytes as they crossed the wire (compressed, if the server compressed them). */
  bytes: number;
  firstChunk: string;
}

/** GETs a path and counts the bytes received, without decompressing them. */
function rawGet(url: string, headers: Record<string, string> = {}, { untilFirstChunk = false } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let bytes = 0;
      let firstChunk = "";
      res.on("data", (chunk: Buffer) => {
        if (bytes === 0) firstChunk = chunk.toString("utf8");
        bytes += chunk.length;
        if (untilFirstChunk) {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, firstChunk });
        }
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, firstChunk }));
      res.on("error", reject);
    });
    req.on("error", (err) => (untilFirstChunk ? undefined : reject(err)));
  });
}

/** Each static file the page links, once (a browser fetches the icon once, however often it is used). */
const assetsOf = (html: string) => [
  ...new Set([...html.matchAll(/(?:href|src)="(\/static\/[^"]+)"/g)].map((m) => m[1]!.replaceAll("&amp;", "&"))),
];

describe("page weight", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ workers: 0 });
  });
  after(async () => {
    await stack?.stop();
  });

  test("when a browser that accepts brotli opens the home page for the first time, then everything it downloads is at most 120 KB", async () => {
    const accept = { "Accept-Encoding": "br, gzip" };
    const page = await rawGet(`${stack.url}/`, accept);
    assert.equal(page.status, 200);
    assert.equal(page.headers["content-encoding"], "br");
    const html = (await stack.http().get("/").expect(200)).text;
    const assets = assetsOf(html);
    assert.ok(
      assets.some((a) => a.startsWith("/static/bulma/bulma.min.css?v=")),
      `Bulma is linked: ${assets}`,
    );
    let total = page.bytes;
    const sizes: string[] = [];
    for (const asset of assets) {
      const res = await rawGet(`${stack.url}${asset}`, accept);
      assert.equal(res.status, 200, asset);
      total += res.bytes;
      sizes.push(`${asset} ${res.bytes} B ${res.headers["content-encoding"] ?? "identity"}`);
    }
    console.log(`first visit: ${total} bytes (page ${page.bytes} B, ${sizes.join(", ")})`);
    assert.ok(total <= 120 * 1024, `first visit moved ${total} bytes: page ${page.bytes} B, ${sizes.join(", ")}`);
    const bulma = await rawGet(`${stack.url}/static/bulma/bulma.min.css`);
    assert.ok(
      bulma.bytes > 5 * total,
      `uncompressed Bulma alone is ${bulma.bytes} B, so compression is what keeps the visit small`,
    );
  });

  test("when a page links its stylesheet and script, then each address carries a fingerprint and may be kept for a year", async () => {
    const html = (await stack.http().get("/").expect(200)).text;
    const assets = assetsOf(html);
    assert.equal(assets.length, 4, `bulma, app.css, favicon, app.js: ${assets}`);
    for (const asset of assets) {
      assert.match(asset, /\?v=[0-9a-f]{10}$/);
      const res = await stack.http().get(asset).expect(200);
      assert.equal(res.headers["cache-control"], "public, max-age=31536000, immutable", asset);
    }
    // The page itself is made for one request and never kept.
    assert.equal((await stack.http().get("/").expect(200)).headers["cache-control"], "no-store");
  });

  test("when a browser that accepts compression opens the live stream, then the stream is sent as is and its first event arrives at once", async () => {
    const stream = await rawGet(
      `${stack.url}/events`,
      { Accept: "text/event-stream", "Accept-Encoding": "br, gzip" },
      { untilFirstChunk: true },
    );
    assert.equal(stream.status, 200);
    assert.equal(stream.headers["content-encoding"], undefined);
    assert.match(stream.firstChunk, /^retry: \d+/);
  });

  test("when a small JSON answer is asked for with compression, then it is sent as is (below the threshold)", async () => {
    const res = await rawGet(`${stack.url}/healthz`, { "Accept-Encoding": "br, gzip" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], undefined);
  });
});
