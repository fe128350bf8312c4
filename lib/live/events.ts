// What happens to tasks and photos, told to live pages. Events are hints: a page that may
// have missed some (the browser reconnected, or the web lost the broker for a while) is
// sent a snapshot or a resync and reloads what it shows, so a lost event is harmless.
import type { PhotoView, TaskView } from "../lifecycle/shapes.ts";
import type { WorkerAvailability } from "../monitor/workerAvailability.ts";

export type AppEvent =
  /** photos: what this change stored (a SUCCESS), sent along so one message tells both. */
  | { type: "task"; task: TaskView; photos?: PhotoView[] }
  | { type: "photos"; taskId: string; photos: PhotoView[] }
  | { type: "photos-cleared"; deleted: number }
  | { type: "resync" }
  /**
   * The monitor's queue or workers numbers changed (lib/monitor/feed.ts); only ever local. `workers` lets the other
   * pages redraw only when it changed; `panels` is the digest of the panels, which a page drawn with it already shows.
   */
  | { type: "monitor"; workers?: WorkerAvailability; panels?: string };

/**
 * Task events nobody hears are returned by the broker (they are published mandatory): for
 * this long after a return, a process makes no more of them, and the first one after it
 * asks again. A web that starts hearing them tells the workers at once (lib/live/eventRelay.ts);
 * another web's events may go unheard for up to this long, until its next one.
 */
export const UNHEARD_QUIET_MS = 1000;

export interface EventSink {
  /** "local": only this process's pages need it; otherwise every web process hears it. */
  emit(event: AppEvent, scope?: "local"): void;
  /** Whether anyone would hear an event of this scope now; when false, callers need not build it. */
  wanted?(scope?: "local"): boolean;
}
