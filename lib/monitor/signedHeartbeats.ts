// Heartbeats and goodbyes travel on the events exchange, where anyone who can publish could
// invent workers to fill the registry, or say a real one went offline. So when web and workers
// share a control key (lib/monitor/controlMessages.ts) a worker signs each with it, and the web takes
// only those signed with that key within FRESH_MS. With no key, they go unsigned, as before.
import { FRESH_MS, signatureMatches, signParts } from "./controlMessages.ts";
import type { Heartbeat } from "./workerRegistry.ts";

export type HeartbeatKind = "worker.heartbeat" | "worker.offline";

/** A heartbeat as a signing worker sends it. */
export type SignedHeartbeat = Heartbeat & { signedAt: number; mac: string };

// Every field, in one order, so the signature does not depend on how either side built the object.
const FIELDS = Object.keys({
  id: 1,
  host: 1,
  pid: 1,
  concurrency: 1,
  done: 1,
  failed: 1,
  skipped: 1,
  inFlight: 1,
  startedAt: 1,
  ready: 1,
  paused: 1,
} satisfies Record<keyof Heartbeat, 1>) as (keyof Heartbeat)[];

const mac = (key: Buffer, kind: HeartbeatKind, beat: Heartbeat, signedAt: number) =>
  signParts(key, [kind, signedAt, ...FIELDS.map((field) => beat[field])]);

export function signHeartbeat(key: Buffer, kind: HeartbeatKind, beat: Heartbeat, now = Date.now()): SignedHeartbeat {
  return { ...beat, signedAt: now, mac: mac(key, kind, beat, now) };
}

/**
 * Whether `beat` (already checked field by field) came with a fresh signature made with `key` for this kind of message.
 */
export function heartbeatSigned(
  key: Buffer,
  kind: HeartbeatKind,
  beat: Heartbeat,
  payload: unknown,
  now = Date.now(),
): boolean {
  const { signedAt, mac: given } = payload as { signedAt?: unknown; mac?: unknown };
  if (!Number.isSafeInteger(signedAt) || typeof given !== "string" || given.length > 100) return false;
  return (
    Math.abs(now - (signedAt as number)) <= FRESH_MS &&
    signatureMatches(given, mac(key, kind, beat, signedAt as number))
  );
}
