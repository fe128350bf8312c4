// Who may press the buttons: with ADMIN_PASSWORD set, the actions that change or delete
// (clear photos, cancel, retry, requeue, purge, pause) need it, as HTTP Basic credentials
// (any user name). Browsers ask for it themselves on the 401 and send the request again,
// forms included. Reading stays open. Wrong guesses are limited per client address.
import { createHash, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { rateLimit } from "express-rate-limit";
import { RateLimitedError, UnauthorizedError } from "../lib/errors.ts";

/** Wrong passwords a client may send in GUESS_WINDOW_MS before it must wait. */
const GUESSES = 10;
const GUESS_WINDOW_MS = 15 * 60_000;

export function adminOnly(password: string | undefined): RequestHandler[] {
  if (!password) return [];
  const expected = digest(password);
  const guesses = rateLimit({
    windowMs: GUESS_WINDOW_MS,
    limit: GUESSES,
    // Only refusals count: an admin at work is never slowed down.
    skipSuccessfulRequests: true,
    standardHeaders: false,
    legacyHeaders: false,
    handler: (_req, _res, next) => next(new RateLimitedError("Too many wrong admin passwords from you. Try again in 15 minutes.", GUESS_WINDOW_MS / 1000)),
  });
  const check = (req: Request, _res: Response, next: NextFunction) => {
    const given = basicCredentials(req.headers.authorization)?.password;
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (given === undefined || !timingSafeEqual(digest(given), expected)) return next(new UnauthorizedError());
    next();
  };
  return [guesses, check];
}

/**
 * Who pressed a button, as recorded on what it changed (a task retried by hand): the user
 * name given with the admin password, if any, and the client's address.
 */
export function actorOf(req: Request): string {
  const user = basicCredentials(req.headers.authorization)
    ?.user.replace(/[^\p{L}\p{N} ._@-]/gu, "")
    .slice(0, 64);
  return `${user || "someone"} from ${req.ip ?? "an unknown address"}`;
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(header ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
