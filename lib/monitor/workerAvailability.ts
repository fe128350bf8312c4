// Whether a task submitted now would be picked up: some worker is alive and not paused.
// Flower tells its users when no worker is running; a page that says "Fetching…" while no
// worker listens leaves the person waiting for nothing.
import type { WorkerView } from "./workerRegistry.ts";

/**
 * running: a live worker takes jobs. paused: the live ones are all paused. none: no live worker. unknown: this web just
 * started and has not heard a heartbeat round yet.
 */
export type WorkerAvailability = "running" | "paused" | "none" | "unknown";

/** Longer than the workers' 2 s heartbeat: a web younger than this says nothing. */
const LISTEN_FIRST_MS = 5000;
const startedAt = Date.now();

export function workerAvailability(workers: WorkerView[], now = Date.now(), since = startedAt): WorkerAvailability {
  const alive = workers.filter((w) => w.alive);
  if (alive.some((w) => !w.paused)) return "running";
  if (alive.length > 0) return "paused";
  return now - since < LISTEN_FIRST_MS ? "unknown" : "none";
}
