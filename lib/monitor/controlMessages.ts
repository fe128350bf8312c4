// Pause, resume and stop travel as messages on the events exchange, where anyone who can publish
// on the broker could send one. So the web signs each with a key it shares with the workers
// (CONTROL_SECRET, or one derived from ADMIN_PASSWORD), and a worker obeys only a message
// signed with that key, made within the last FRESH_MS, not before the worker started, and not
// heard before. Workers sign their heartbeats with the same key (lib/monitor/signedHeartbeats.ts).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export type ControlAction = "pause" | "resume" | "stop";

export interface ControlMessage {
  /** The worker it is for; absent: every worker. */
  worker?: string;
  /** stop: the task whose run is abandoned (signed with the rest). */
  task?: string;
  /** When the web made it (ms since the epoch). */
  at: number;
  /** Makes each message unique, so a worker can tell a replay. */
  nonce: string;
  /** HMAC-SHA256 over the action, worker, at, nonce and task (when there is one). */
  mac: string;
}

/** How old (or, clocks being what they are, how far ahead) a message may be. */
export const FRESH_MS = 30_000;
/** A worker id as heartbeats carry it. */
export const WORKER_ID = /^[\w.:@-]{1,100}$/;
/**
 * A worker ignores control messages made before it started, less this much for clocks that
 * disagree: its nonces live in its memory only, so a message captured before it started would
 * otherwise be new to it for the rest of FRESH_MS.
 */
export const CLOCK_SKEW_MS = 2_000;
/** Nonces a worker remembers: far above what people pressing buttons send in FRESH_MS. */
const MAX_REMEMBERED = 10_000;

/** The signing key, or undefined when neither secret is set (then pausing is off). */
export function controlKey(config: { controlSecret?: string; adminPassword?: string }): Buffer | undefined {
  const secret = config.controlSecret ?? config.adminPassword;
  // Derived, not the secret itself: a message's MAC says nothing usable about the password.
  return secret === undefined ? undefined : createHmac("sha256", secret).update("gendog control messages v1").digest();
}

export function signControl(
  key: Buffer,
  action: ControlAction,
  worker: string | undefined,
  now = Date.now(),
  task?: string,
): ControlMessage {
  const nonce = randomBytes(16).toString("base64url");
  return {
    ...(worker === undefined ? {} : { worker }),
    ...(task === undefined ? {} : { task }),
    at: now,
    nonce,
    mac: mac(key, action, worker, now, nonce, task),
  };
}

/** Tells whichever worker runs `taskId` to abandon it. */
export const signStop = (key: Buffer, taskId: string, now = Date.now()) =>
  signControl(key, "stop", undefined, now, taskId);

/** A task id as the stop message names it. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type ControlCheck = { ok: true; worker?: string; task?: string } | { ok: false; reason: string };

/**
 * A worker's check of control messages, remembering the nonces it has obeyed while they are fresh. `startedAt`: when
 * the worker started (ms).
 */
export function controlChecker(
  key: Buffer,
  startedAt = -Infinity,
): (action: ControlAction, payload: unknown, now?: number) => ControlCheck {
  const seen = new Map<string, number>(); // nonce -> when it stops being fresh; in the order heard
  return (action, payload, now = Date.now()) => {
    const message = payload as Partial<Record<keyof ControlMessage, unknown>> | null;
    if (typeof message !== "object" || message === null || Array.isArray(message))
      return { ok: false, reason: "not an object" };
    const { worker, task, at, nonce, mac: given } = message;
    if (worker !== undefined && (typeof worker !== "string" || !WORKER_ID.test(worker)))
      return { ok: false, reason: "malformed worker" };
    // Only a stop names a task, and it must.
    if (
      (action === "stop") !== (task !== undefined) ||
      (task !== undefined && (typeof task !== "string" || !TASK_ID.test(task)))
    )
      return { ok: false, reason: "malformed task" };
    if (
      !Number.isSafeInteger(at) ||
      typeof nonce !== "string" ||
      !/^[\w-]{16,64}$/.test(nonce) ||
      typeof given !== "string"
    )
      return { ok: false, reason: "unsigned" };
    if (!signatureMatches(given, mac(key, action, worker, at as number, nonce, task as string | undefined)))
      return { ok: false, reason: "wrong signature" };
    if (Math.abs(now - (at as number)) > FRESH_MS) return { ok: false, reason: "stale" };
    if ((at as number) < startedAt - CLOCK_SKEW_MS) return { ok: false, reason: "made before this worker started" };
    for (const [old, until] of seen) {
      if (until > now) break;
      seen.delete(old);
    }
    if (seen.has(nonce)) return { ok: false, reason: "replayed" };
    if (seen.size >= MAX_REMEMBERED) return { ok: false, reason: "too many control messages" };
    seen.set(nonce, (at as number) + FRESH_MS);
    return {
      ok: true,
      ...(worker === undefined ? {} : { worker }),
      ...(task === undefined ? {} : { task: task as string }),
    };
  };
}

function mac(
  key: Buffer,
  action: ControlAction,
  worker: string | undefined,
  at: number,
  nonce: string,
  task?: string,
): string {
  // Pause and resume sign what they always did; a stop adds its task.
  return signParts(key, [action, worker ?? null, at, nonce, ...(task === undefined ? [] : [task])]);
}

/**
 * HMAC-SHA256 of the parts as a JSON array; the first part says what kind of message it is, so one kind's signature
 * never passes for another's.
 */
export function signParts(key: Buffer, parts: unknown[]): string {
  return createHmac("sha256", key).update(JSON.stringify(parts)).digest("base64url");
}

/** Whether a signature as received equals the expected one, in constant time. */
export function signatureMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given, "base64url");
  const b = Buffer.from(expected, "base64url");
  return a.length === b.length && timingSafeEqual(a, b);
}
