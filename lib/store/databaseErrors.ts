// Which errors mean "the database is away" (not "this query is wrong"): the web answers
// them with 503 and Retry-After, and a worker holds its job for later instead of spending
// the job's retries on them.

/** Socket errors of a connection that was refused, reset or timed out. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/** Prisma's: cannot reach, timed out, connection closed, no pooled connection in time. */
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
/** @prisma/adapter-pg's names for the same. */
const ADAPTER_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections"]);
/** node-postgres says these in words only (no code). */
const DRIVER_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error and is not queryable|Connection closed/i;

/**
 * True for a lost, refused or silent connection, PostgreSQL shutting down or out of
 * connections (SQLSTATE class 08, 57P01-57P03, 53300), and SQLite's write lock not freed in
 * time (SQLITE_BUSY); looks through `cause` and Prisma's wrappers.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let current = err as { code?: unknown; kind?: unknown; message?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; current && typeof current === "object" && depth < 5; depth++) {
    const { code, kind, message } = current;
    if (
      typeof code === "string" &&
      (NETWORK_CODES.has(code) ||
        PRISMA_CODES.has(code) ||
        code.startsWith("SQLITE_BUSY") ||
        /^(08...|57P0[123]|53300)$/.test(code))
    )
      return true;
    if (typeof kind === "string" && ADAPTER_KINDS.has(kind)) return true;
    if (typeof message === "string" && DRIVER_MESSAGES.test(message)) return true;
    current = current.cause as typeof current;
  }
  return false;
}
