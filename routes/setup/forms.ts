// What the HTML forms need: cookies, urlencoded bodies (small, few fields), and
// double-submit CSRF tokens bound to an anonymous per-browser id (the app has no log-in,
// so there is no session to bind them to).
import { randomBytes } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import cookieParser from "cookie-parser";
import { doubleCsrf } from "csrf-csrf";
import type { AppDeps } from "../../lib/appDeps.ts";
import { AppError } from "../../lib/platform/errors.ts";

const CLIENT_COOKIE = "gendog.client";
const selection = express.urlencoded({ extended: false, limit: "8kb", parameterLimit: 60 });

export function setUpForms(config: AppDeps["config"]) {
  const { doubleCsrfProtection, generateCsrfToken } = doubleCsrf({
    getSecret: () => config.csrfSecret,
    getSessionIdentifier: (req) => String(req.cookies?.[CLIENT_COOKIE] ?? ""),
    cookieName: "gendog.csrf",
    cookieOptions: { sameSite: "strict", secure: config.secureCookies, httpOnly: true, path: "/" },
    getCsrfTokenFromRequest: (req) => (req.body as Record<string, unknown> | undefined)?._csrf as string | undefined,
  });
  return [
    cookieParser(),
    // Acting on a selection sends a page's ticked ids (25 of 36 characters) with the search.
    (req: Request, res: Response, next: NextFunction) =>
      req.path === "/tasks/bulk" ? selection(req, res, next) : next(),
    express.urlencoded({ extended: false, limit: "4kb", parameterLimit: 20 }),
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
        if (err)
          return next(
            new AppError(
              403,
              "csrf",
              "This form has expired or did not come from GenDog. Go back, reload the page and try again.",
            ),
          );
        res.locals.csrfToken = generateCsrfToken(req, res);
        next();
      });
    },
  ];
}
