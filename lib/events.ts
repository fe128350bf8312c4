// What happens to tasks and photos, told to live pages. Events are hints: a page that may
// have missed some (the browser reconnected, or the web lost the broker for a while) is
// sent a snapshot or a resync and reloads what it shows, so a lost event is harmless.
import type { PhotoView, TaskView } from "./views.ts";

export type AppEvent =
  | { type: "task"; task: TaskView }
  | { type: "photos"; taskId: string; photos: PhotoView[] }
  | { type: "photos-cleared"; deleted: number }
  | { type: "resync" };

export interface EventSink {
  emit(event: AppEvent): void;
}

export function isAppEvent(value: unknown): value is AppEvent {
  const type = (value as { type?: unknown } | null)?.type;
  return type === "task" || type === "photos" || type === "photos-cleared" || type === "resync";
}
