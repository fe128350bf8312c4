// What happens to tasks and photos, told to live pages. Events are hints: a page that
// missed some resyncs from a snapshot, so losing one while the broker is away is harmless.
import type { PhotoView, TaskView } from "./views.ts";

export type AppEvent =
  | { type: "task"; task: TaskView }
  | { type: "photos"; taskId: string; photos: PhotoView[] }
  | { type: "photos-cleared"; deleted: number };

export interface EventSink {
  emit(event: AppEvent): void;
}

export const silentEvents: EventSink = { emit() {} };

export function isAppEvent(value: unknown): value is AppEvent {
  const type = (value as { type?: unknown } | null)?.type;
  return type === "task" || type === "photos" || type === "photos-cleared";
}
