// One rate limit on creating tasks, shared by the form and the API (per client address).
import { rateLimit } from "express-rate-limit";
import { AppError } from "../lib/errors.ts";

export function taskCreationLimit(perMinute: number) {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    skip: () => perMinute === 0,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    handler: (_req, _res, next) =>
      next(new AppError(429, "rate_limited", `Too many new tasks from you: at most ${perMinute} a minute. Wait a moment and try again.`)),
  });
}
