// The one error path: a 404 for what matched nothing, and one handler that turns typed
// errors (lib/platform/errors.ts) into an error page or JSON, with the request's id. Anything
// else is a 500 that shows nothing internal.
import type { ErrorRequestHandler, NextFunction, Request, Response } from "express";
import type { AppDeps } from "../../lib/appDeps.ts";
import { isDatabaseUnavailable } from "../../lib/store/databaseErrors.ts";
import {
  AppError,
  CountChangedError,
  DatabaseUnavailableError,
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
} from "../../lib/platform/errors.ts";

export function notFound(_req: Request, _res: Response, next: NextFunction) {
  next(new NotFoundError("There is no page here."));
}

export function errorHandler(deps: AppDeps): ErrorRequestHandler {
  return (thrown, req, res, next) => {
    // A database that is away is a 503 with Retry-After on every page, not a 500.
    const err =
      !(thrown instanceof AppError) && isDatabaseUnavailable(thrown) ? new DatabaseUnavailableError() : thrown;
    const { status, code, message, field } = describeError(err);
    if (status >= 500) (req.log ?? deps.logger).error({ err: thrown }, "request failed");
    const requestId = String(req.id ?? "");
    if (res.headersSent) return next(thrown); // Express ends the response
    const wantsJson = req.originalUrl.startsWith("/api/") || req.accepts(["html", "json"]) === "json";
    const retryAfterSeconds =
      err instanceof RateLimitedError || err instanceof DatabaseUnavailableError ? err.retryAfterSeconds : undefined;
    if (retryAfterSeconds !== undefined) res.set("Retry-After", String(retryAfterSeconds));
    // The browser asks the person for the admin password, then sends the same request again.
    if (err instanceof UnauthorizedError) res.set("WWW-Authenticate", 'Basic realm="GenDog admin", charset="UTF-8"');
    if (wantsJson) {
      res.status(status).json({
        error: {
          code,
          message,
          ...(field ? { field } : {}),
          ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
          ...(err instanceof CountChangedError ? { matched: err.matched } : {}),
          requestId,
        },
      });
    } else {
      res
        .status(status)
        .render("error", { status, message, requestId, title: status === 404 ? "Not found" : "Something went wrong" });
    }
  };
}

/** Body-parser failures: the only foreign errors whose meaning is shown to the caller. */
const PARSER_ERRORS: Record<string, [number, string, string]> = {
  "entity.too.large": [413, "too_large", "The request body is too large."],
  "entity.parse.failed": [400, "invalid_json", "The request body is not valid JSON."],
  "parameters.too.many": [413, "too_many_fields", "The request has too many fields."],
  "charset.unsupported": [415, "unsupported_media_type", "Send the body as UTF-8 JSON, without a content encoding."],
  "encoding.unsupported": [415, "unsupported_media_type", "Send the body as UTF-8 JSON, without a content encoding."],
};

function describeError(err: unknown): { status: number; code: string; message: string; field?: string } {
  if (err instanceof AppError) return { status: err.status, code: err.code, message: err.message, field: err.field };
  const parser = PARSER_ERRORS[(err as { type?: string } | null)?.type ?? ""];
  if (parser) return { status: parser[0], code: parser[1], message: parser[2] };
  const status = (err as { status?: unknown } | null)?.status;
  // Other 4xx from Express itself (a malformed URL, say): say little, show nothing internal.
  if (typeof status === "number" && status >= 400 && status < 500)
    return { status, code: "bad_request", message: "The request could not be read." };
  return { status: 500, code: "internal", message: "Something went wrong on our side. Try again in a moment." };
}
