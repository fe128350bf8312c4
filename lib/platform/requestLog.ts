// One log line per request (method, path, status, time, request id) through pino-http, and
// a request id on every line a request causes (req.log), in the X-Request-Id header, the
// error page and the JSON error body, so a person can quote it and we can find the lines.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pinoHttp } from "pino-http";
import type { Logger } from "./logger.ts";

/** An id a proxy in front may already have given the request; anything else gets a fresh one. */
const FORWARDED_ID = /^[A-Za-z0-9._-]{8,64}$/;

export function requestLogging(logger: Logger) {
  return pinoHttp({
    logger,
    quietReqLogger: true, // lines from req.log carry reqId, not the whole request again
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const given = req.headers["x-request-id"];
      const id = typeof given === "string" && FORWARDED_ID.test(given) ? given : randomUUID();
      res.setHeader("X-Request-Id", id);
      return id;
    },
    // Health checks come every few seconds from Docker and load balancers: keep them out of the way.
    customLogLevel: (req, res, err) => (err || res.statusCode >= 500 ? "error" : isHealthCheck(req) ? "debug" : "info"),
    customSuccessMessage: (req, res, ms) => `${req.method} ${pathOf(req)} ${res.statusCode} in ${Math.round(ms)} ms`,
    customErrorMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode} failed`,
    // The path only (a query may hold what a person typed), bounded; no headers (cookies, tokens).
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        path: pathOf(req),
      }),
      res: (res: { statusCode: number }) => ({ status: res.statusCode }),
    },
  });
}

function pathOf(req: { url?: string; originalUrl?: string }): string {
  return (req.originalUrl ?? req.url ?? "").split("?")[0]!.slice(0, 200);
}

function isHealthCheck(req: IncomingMessage): boolean {
  return req.url === "/healthz" || req.url === "/readyz";
}
