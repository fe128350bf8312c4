// OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, one submit makes one trace, from the
// HTTP request through the outbox's publish to the worker's run and its dog.ceo call,
// exported over OTLP/HTTP to a collector (a stand-in here), and the task page shows its id.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startStack, waitFor, waitForTaskState, type Stack } from "./support/stack.ts";

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}

/** An OTLP/HTTP collector that keeps every span it is sent (JSON encoding). */
async function startCollector() {
  const spans: ExportedSpan[] = [];
  const services = new Set<string>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const data = JSON.parse(body) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { spans: ExportedSpan[] }[];
        }[];
      };
      for (const rs of data.resourceSpans) {
        services.add(rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?");
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    services,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("tracing", () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let stack: Stack;
  before(async () => {
    collector = await startCollector();
    stack = await startStack({ workers: 1, env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url } });
  });
  after(async () => {
    await stack?.stop();
    await collector?.close();
  });

  test("when a task is submitted with tracing on, then its request, publish, run and dog.ceo call are one trace, and its page names it", async () => {
    const { body } = await stack.http().post("/api/tasks").send({ breed: "pug", limit: 2 }).expect(202);
    await waitForTaskState(stack.db, body.id, ["SUCCESS"]);
    const named = (name: string) =>
      collector.spans.find(
        (s) => s.name === name && collector.spans.some((r) => r.name === "POST /api/tasks" && r.traceId === s.traceId),
      );
    const spans = await waitFor("the trace's four spans", () => {
      const found = ["POST /api/tasks", "publish job", "run task", "dog.ceo random images"].map(named);
      return found.every(Boolean) ? (found as ExportedSpan[]) : undefined;
    });
    const [request, publish, run, dogApi] = spans;
    assert.equal(new Set(spans.map((s) => s.traceId)).size, 1, "one trace");
    assert.equal(publish!.parentSpanId, request!.spanId, "the publish is the request's child");
    assert.equal(run!.parentSpanId, request!.spanId, "the worker's run continues the request's trace");
    assert.equal(dogApi!.parentSpanId, run!.spanId, "the dog.ceo call is the run's child");
    assert.deepEqual(
      spans.map((s) => s.kind),
      [2, 4, 5, 3], // SERVER, PRODUCER, CONSUMER, CLIENT in OTLP's numbering
    );

    const detail = (await stack.http().get(`/api/tasks/${body.id}`).expect(200)).body;
    assert.equal(detail.job.traceId, request!.traceId);
    assert.match(
      (await stack.http().get(`/tasks/${body.id}`).expect(200)).text,
      new RegExp(`<code id="trace-id"[^>]*>${request!.traceId}</code>`),
    );
  });
});
