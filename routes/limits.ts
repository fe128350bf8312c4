// One rate limit on creating tasks, shared by the form and the API (per client address).
import type { Request } from "express";
import { rateLimit, type RateLimitInfo } from "express-rate-limit";
import { RateLimitedError } from "../lib/platform/errors.ts";

export function taskCreationLimit(perMinute: number) {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    skip: () => perMinute === 0,
    // draft-8 RateLimit headers, and Retry-After on a refusal.
    standardHeaders: "draft-8",
    legacyHeaders: false,
    // A forwarding header from a proxy TRUST_PROXY does not name is ignored on purpose (app.ts), not a mistake to warn
    // of.
    validate: { xForwardedForHeader: false, forwardedHeader: false },
    handler: (req, _res, next) => {
      const resetTime =
        (req as Request & { rateLimit?: RateLimitInfo }).rateLimit?.resetTime?.getTime() ?? Date.now() + 60_000;
      const seconds = Math.max(1, Math.ceil((resetTime - Date.now()) / 1000));
      next(
        new RateLimitedError(
          `Too many new tasks from you: at most ${perMinute} a minute. You can submit again in ${seconds} s.`,
          seconds,
        ),
      );
    },
  });
}
