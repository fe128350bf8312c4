// Typed errors carry the HTTP status and a stable code; one handler (routes/setup/errors.ts)
// turns them into an error page or JSON. Anything else is a 500 with no details shown.
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(
    readonly fields: Record<string, string>,
    message = Object.values(fields)[0] ?? "The input is not valid.",
  ) {
    super(400, "invalid_input", message, Object.keys(fields)[0]);
  }
}

export class NotFoundError extends AppError {
  constructor(message = "There is nothing here.") {
    super(404, "not_found", message);
  }
}

export class ConflictError extends AppError {
  constructor(message: string) {
    super(409, "conflict", message);
  }
}

/** An action that needs the admin password, asked without it or with a wrong one. */
export class UnauthorizedError extends AppError {
  constructor(message = "This action needs the admin password.") {
    super(401, "unauthorized", message);
  }
}

/** Too many of something from one client; says when it may try again. */
export class RateLimitedError extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, "rate_limited", message);
  }
}

/** A bulk action confirmed for one count found another: nothing was done; `matched` is what it would touch now. */
export class CountChangedError extends AppError {
  constructor(
    readonly matched: number,
    readonly expected: number,
  ) {
    super(
      409,
      "count_changed",
      `You confirmed ${expected}, but ${matched} match now. Nothing was done: check the new count and confirm again.`,
    );
  }
}

/**
 * The database could not be reached, or did not answer within DATABASE_TIMEOUT_MS: a 503 that says when to try again.
 */
export class DatabaseUnavailableError extends AppError {
  constructor(
    readonly retryAfterSeconds = 5,
    message = `The database is not answering right now, so this could not be done. Try again in ${retryAfterSeconds} s.`,
  ) {
    super(503, "database_unavailable", message);
  }
}

/**
 * The broker did not take a message or answer a question (thrown by the queue layer, tasks/); callers never show it to
 * a person as such. Here, not in tasks/, so routes can tell it apart without importing the queue layer.
 */
export class QueueUnavailableError extends Error {
  constructor(reason: string) {
    super(`the job queue is not reachable (${reason})`);
    this.name = "QueueUnavailableError";
  }
}
