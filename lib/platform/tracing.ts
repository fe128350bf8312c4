// OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: one trace from the
// HTTP request that submits a task, through the outbox's publish, to the worker's run and
// its dog.ceo call, exported over OTLP/HTTP. Spans are made by hand at those few places
// (routes/setup/tracing.ts, tasks/outbox.ts, tasks/job.ts): auto-instrumentation hooks
// require(), which neither tsx nor the esbuild bundle goes through. The trace travels in
// the job message itself (its `trace` field, a W3C traceparent), so a retry, a redelivery
// or a recovery sweep's re-send stays in the same trace. With tracing off, the API's no-op
// tracer makes every span free.
import { context, propagation, trace, SpanKind, SpanStatusCode, type Context, type Span } from "@opentelemetry/api";

export { SpanKind };
export const tracer = () => trace.getTracer("gendog");

/** W3C traceparent: version, trace id, parent span id, flags. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

let provider: { shutdown(): Promise<void>; users: number } | undefined;

/** Is a tracer exporting? The hot paths skip the work of spans (parsing a message for its trace) when not. */
export const tracingOn = () => provider !== undefined;

/**
 * Starts exporting spans to `endpoint` (once per process: a test runs web and worker in
 * one). Returns the stop to call at shutdown, which flushes what is buffered. The SDK is
 * loaded only then: a process that does not trace does not carry it (~10 MB).
 */
export async function startTracing(endpoint: string | undefined, serviceName: string): Promise<() => Promise<void>> {
  if (!endpoint) return async () => {};
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, NodeTracerProvider }] =
    await Promise.all([
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/sdk-trace-node"),
    ]);
  if (!provider) {
    const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, "")}/v1/traces` });
    const nodeProvider = new NodeTracerProvider({
      resource: resourceFromAttributes({ "service.name": serviceName }),
      // Spans leave within a second: a person looking a trace up just after a submit finds it.
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
    });
    nodeProvider.register();
    provider = { shutdown: () => nodeProvider.shutdown(), users: 0 };
  }
  const active = provider;
  active.users += 1;
  return async () => {
    active.users -= 1;
    if (active.users > 0) return;
    if (provider === active) provider = undefined;
    await active.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  };
}

/** The current span's context as a traceparent, to carry in a job message; undefined when nothing is traced. */
export function currentTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent && TRACEPARENT.test(carrier.traceparent) ? carrier.traceparent : undefined;
}

/** The context a job message's traceparent names (or the current one). */
function contextFrom(traceparent: string | undefined): Context {
  return traceparent && TRACEPARENT.test(traceparent)
    ? propagation.extract(context.active(), { traceparent })
    : context.active();
}

/** The trace id in a traceparent, for a person to look the trace up. */
export function traceIdOf(traceparent: unknown): string | null {
  return typeof traceparent === "string" ? (TRACEPARENT.exec(traceparent)?.[1] ?? null) : null;
}

export function isTraceparent(value: unknown): value is string {
  return typeof value === "string" && TRACEPARENT.test(value);
}

/** The traceparent in a job message's text, read without parsing the whole message. */
export function traceparentIn(body: string): string | undefined {
  return /"trace":"(00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})"/.exec(body)?.[1];
}

/**
 * Runs fn in a new span, ended when fn settles; an error marks it failed. The span is a
 * child of the job message's `traceparent` (read only when tracing is on: a hot path pays
 * nothing for it otherwise) or of the current span. With tracing off, fn runs as it is.
 */
export async function inSpan<T>(
  name: string,
  options: {
    kind?: SpanKind;
    traceparent?: () => string | undefined;
    attributes?: () => Record<string, string | number>;
  },
  fn: (span?: Span) => Promise<T>,
): Promise<T> {
  if (!tracingOn()) return fn();
  const parent = options.traceparent ? contextFrom(options.traceparent()) : context.active();
  return tracer().startActiveSpan(
    name,
    { kind: options.kind, attributes: options.attributes?.() },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
