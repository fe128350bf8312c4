// The job message: plain JSON, validated on receipt because anything can arrive on a queue.
import { isTraceparent } from "../lib/platform/tracing.ts";
import { BREED_NAME, MAX_LIMIT, MIN_LIMIT, isUuid } from "../lib/lifecycle/validation.ts";

export interface JobMessage {
  taskId: string;
  breed: string;
  subBreed?: string;
  limit: number;
  /** Present on a task retried by hand: the attempt its new retry budget starts at. */
  firstAttempt?: number;
  /** Sent again by hand: it came through the reruns' lane, and gives way to people's jobs. */
  rerun?: true;
  /** The W3C traceparent of the request that sent it, when tracing is on; a malformed one is dropped, not refused. */
  trace?: string;
}

export class InvalidMessageError extends Error {}

export function parseJobMessage(content: Buffer | string): JobMessage {
  let data: unknown;
  try {
    data = JSON.parse(content.toString());
  } catch {
    throw new InvalidMessageError("the message is not JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data))
    throw new InvalidMessageError("the message is not a JSON object");
  const { taskId, breed, subBreed, limit, firstAttempt, trace, rerun } = data as Record<string, unknown>;
  if (typeof taskId !== "string" || !isUuid(taskId)) throw new InvalidMessageError("taskId is not a uuid");
  if (typeof breed !== "string" || !BREED_NAME.test(breed)) throw new InvalidMessageError("breed is not a breed name");
  if (subBreed !== undefined && (typeof subBreed !== "string" || !BREED_NAME.test(subBreed)))
    throw new InvalidMessageError("subBreed is not a sub-breed name");
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < MIN_LIMIT || limit > MAX_LIMIT)
    throw new InvalidMessageError(`limit is not a whole number from ${MIN_LIMIT} to ${MAX_LIMIT}`);
  if (
    firstAttempt !== undefined &&
    (typeof firstAttempt !== "number" || !Number.isInteger(firstAttempt) || firstAttempt < 1)
  )
    throw new InvalidMessageError("firstAttempt is not a whole number from 1");
  if (rerun !== undefined && rerun !== true) throw new InvalidMessageError("rerun is not true");
  return {
    taskId,
    breed,
    ...(subBreed ? { subBreed } : {}),
    limit,
    ...(firstAttempt ? { firstAttempt } : {}),
    ...(rerun ? { rerun } : {}),
    ...(isTraceparent(trace) ? { trace } : {}),
  };
}

/**
 * Whether a job (as the outbox holds it) is a rerun, published to the reruns' lane: see lib/lifecycle/shapes.ts
 * jobBody.
 */
export function isRerun(body: string): boolean {
  try {
    return (JSON.parse(body) as { rerun?: unknown } | null)?.rerun === true;
  } catch {
    return false;
  }
}
