// Builds the Express app from its dependencies; never listens (web.ts does).
import path from "node:path";
import { randomBytes } from "node:crypto";
import express, { type ErrorRequestHandler, type NextFunction, type Request, type Response } from "express";
import cookieParser from "cookie-parser";
import { doubleCsrf } from "csrf-csrf";
import helmet from "helmet";
import nunjucks from "nunjucks";
import type { AppDeps } from "./lib/appDeps.ts";
import { projectRoot } from "./lib/config.ts";
import { AppError, NotFoundError, RateLimitedError } from "./lib/errors.ts";
import { requestLogging } from "./lib/requestLog.ts";
import { apiRoutes } from "./routes/api.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { taskCreationLimit } from "./routes/limits.ts";
import { pageRoutes } from "./routes/pages.ts";

export type { AppDeps } from "./lib/appDeps.ts";

export function createApp(deps: AppDeps) {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", "loopback");
  configureViews(app, deps.config.env !== "development");
  app.use(requestLogging(deps.logger));

  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: true,
        directives: {
          "default-src": ["'self'"],
          "script-src": ["'self'"],
          "style-src": ["'self'"],
          "img-src": ["'self'", ...deps.config.imageOrigins],
          "connect-src": ["'self'"],
          "form-action": ["'self'"],
          "frame-ancestors": ["'none'"],
          "object-src": ["'none'"],
          // The dog.ceo stand-in serves images over http on loopback; do not rewrite them.
          "upgrade-insecure-requests": null,
        },
      },
      crossOriginEmbedderPolicy: false,
    }),
  );

  app.use("/static/bulma", express.static(path.join(projectRoot, "node_modules", "bulma", "css"), { maxAge: "7d" }));
  app.use("/static", express.static(path.join(projectRoot, "static"), { maxAge: deps.config.env === "production" ? "1h" : 0 }));

  // Everything past the static files is made for one request: pages carry a CSRF token and
  // set cookies, the API and the streams are live data. None may be stored by any cache.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.set("Cache-Control", "no-store");
    next();
  });

  const createLimit = taskCreationLimit(deps.config.rateLimitPerMinute);
  const events = eventRoutes(deps);
  app.use(healthRoutes(deps));
  app.use("/api", apiRoutes(deps, createLimit));
  app.use(events);

  app.use(cookieParser());
  app.use(express.urlencoded({ extended: false, limit: "4kb", parameterLimit: 20 }));
  app.use(csrfProtection(deps.config));
  app.use(pageRoutes(deps, createLimit));

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NotFoundError("There is no page here.")));
  app.use(errorHandler(deps));
  return Object.assign(app, { closeEventStreams: () => events.closeAll() });
}

function configureViews(app: express.Express, cache: boolean) {
  const env = nunjucks.configure(path.join(projectRoot, "views"), { autoescape: true, express: app, noCache: !cache });
  env.addFilter("datetime", (iso: string | null) => (iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "—"));
  env.addFilter("duration", (ms: number | null) => formatDuration(ms));
  app.set("view engine", "njk");
}

function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/**
 * Double-submit CSRF tokens on every form POST, bound to an anonymous per-browser id
 * (the app has no log-in, so there is no session to bind them to).
 */
function csrfProtection(config: AppDeps["config"]) {
  const CLIENT_COOKIE = "gendog.client";
  const { doubleCsrfProtection, generateCsrfToken } = doubleCsrf({
    getSecret: () => config.csrfSecret,
    getSessionIdentifier: (req) => String(req.cookies?.[CLIENT_COOKIE] ?? ""),
    cookieName: "gendog.csrf",
    cookieOptions: { sameSite: "strict", secure: config.secureCookies, httpOnly: true, path: "/" },
    getCsrfTokenFromRequest: (req) => (req.body as Record<string, unknown> | undefined)?._csrf as string | undefined,
  });
  return [
    (req: Request, res: Response, next: NextFunction) => {
      if (!req.cookies?.[CLIENT_COOKIE]) {
        const id = randomBytes(16).toString("hex");
        req.cookies[CLIENT_COOKIE] = id;
        res.cookie(CLIENT_COOKIE, id, { sameSite: "strict", httpOnly: true, secure: config.secureCookies, path: "/" });
      }
      next();
    },
    (req: Request, res: Response, next: NextFunction) => {
      doubleCsrfProtection(req, res, (err?: unknown) => {
        if (err) return next(new AppError(403, "csrf", "This form has expired or did not come from GenDog. Go back, reload the page and try again."));
        res.locals.csrfToken = generateCsrfToken(req, res);
        next();
      });
    },
  ];
}

function errorHandler(deps: AppDeps): ErrorRequestHandler {
  return (err, req, res, next) => {
    const { status, code, message, field } = describeError(err);
    if (status >= 500) (req.log ?? deps.logger).error({ err }, "request failed");
    const requestId = String(req.id ?? "");
    if (res.headersSent) return next(err); // Express ends the response
    const wantsJson = req.originalUrl.startsWith("/api/") || req.accepts(["html", "json"]) === "json";
    const retryAfterSeconds = err instanceof RateLimitedError ? err.retryAfterSeconds : undefined;
    if (retryAfterSeconds !== undefined) res.set("Retry-After", String(retryAfterSeconds));
    if (wantsJson) {
      res.status(status).json({ error: { code, message, ...(field ? { field } : {}), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}), requestId } });
    } else {
      res.status(status).render("error", { status, message, requestId, title: status === 404 ? "Not found" : "Something went wrong" });
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
  if (typeof status === "number" && status >= 400 && status < 500) return { status, code: "bad_request", message: "The request could not be read." };
  return { status: 500, code: "internal", message: "Something went wrong on our side. Try again in a moment." };
}
