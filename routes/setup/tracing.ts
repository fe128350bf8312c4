// A server span per request when tracing is on (lib/platform/tracing.ts), so a submit's trace
// starts at the HTTP request; its route, once matched, names it. Live event streams are
// left out: a span hours long helps nobody.
import type { NextFunction, Request, Response } from "express";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { tracer, tracingOn } from "../../lib/platform/tracing.ts";

export function setUpTracing() {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!tracingOn() || req.path === "/events") return next();
    tracer().startActiveSpan(
      `${req.method} ${req.path}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": req.method, "url.path": req.path } },
      (span) => {
        res.once("finish", () => {
          const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : undefined;
          if (route) span.updateName(`${req.method} ${route}`).setAttribute("http.route", route);
          span.setAttribute("http.response.status_code", res.statusCode);
          if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        });
        next();
      },
    );
  };
}
