// What an event heard from another process must look like. Whoever can publish on the
// events exchange can send anything: what the pages are told must be what a real task could
// be, and nothing more.
import type { AppEvent } from "./events.ts";
import { TASK_STATES, type PhotoView, type TaskView } from "../lifecycle/shapes.ts";
import { MAX_ERROR_LENGTH } from "../platform/text.ts";
import { BREED_NAME, MAX_LIMIT, isUuid as uuid } from "../lifecycle/validation.ts";

/**
 * The event, checked field by field (types, lengths, ranges) and copied without any other
 * field, or undefined.
 */
export function parseAppEvent(value: unknown): AppEvent | undefined {
  if (!isRecord(value)) return undefined;
  switch (value.type) {
    case "task": {
      const task = parseTaskView(value.task);
      if (!task) return undefined;
      if (value.photos === undefined) return { type: "task", task };
      const photos = parsePhotos(value.photos);
      return photos ? { type: "task", task, photos } : undefined;
    }
    case "photos": {
      const photos = parsePhotos(value.photos);
      return isUuid(value.taskId) && photos ? { type: "photos", taskId: value.taskId, photos } : undefined;
    }
    case "photos-cleared":
      return count(value.deleted) ? { type: "photos-cleared", deleted: value.deleted } : undefined;
    case "resync":
      return { type: "resync" };
    default:
      return undefined;
  }
}

type Fields = Record<string, unknown>;
const isRecord = (v: unknown): v is Fields => typeof v === "object" && v !== null && !Array.isArray(v);
const count = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
const text = (v: unknown, max: number): v is string => typeof v === "string" && v.length <= max;
const breedName = (v: unknown): v is string => typeof v === "string" && BREED_NAME.test(v);
const time = (v: unknown): v is string => text(v, 30) && !Number.isNaN(Date.parse(v));
const orNull =
  <T>(check: (v: unknown) => v is T) =>
  (v: unknown): v is T | null =>
    v === null || check(v);
const isUuid = (v: unknown): v is string => typeof v === "string" && uuid(v);
const millis = (v: unknown): v is number => Number.isSafeInteger(v);
const STATES: readonly unknown[] = TASK_STATES;
/** Longer than anything stored (errors are cut at MAX_ERROR_LENGTH, links at 2,048), so a real event always passes. */
const MAX_TEXT = 2 * MAX_ERROR_LENGTH;
const MAX_URL = 2048;

function parseTaskView(v: unknown): TaskView | undefined {
  if (!isRecord(v)) return undefined;
  const ok =
    isUuid(v.id) &&
    breedName(v.breed) &&
    orNull(breedName)(v.subBreed) &&
    text(v.label, 100) &&
    count(v.limit, MAX_LIMIT) &&
    STATES.includes(v.state) &&
    orNull((e): e is string => text(e, MAX_TEXT))(v.error) &&
    count(v.photoCount, MAX_LIMIT) &&
    count(v.attemptCount) &&
    time(v.createdAt) &&
    time(v.updatedAt) &&
    [v.queuedAt, v.startedAt, v.finishedAt, v.retryAt, v.retriedAt].every(orNull(time)) &&
    [v.waitingForQueue, v.cancellable, v.retriable].every((b) => typeof b === "boolean") &&
    orNull((by): by is string => text(by, 200))(v.retriedBy) &&
    orNull(millis)(v.waitMs) &&
    orNull(millis)(v.runtimeMs);
  return ok ? (pick(v, TASK_FIELDS) as unknown as TaskView) : undefined;
}

const TASK_FIELDS = [
  "id",
  "breed",
  "subBreed",
  "label",
  "limit",
  "state",
  "error",
  "photoCount",
  "attemptCount",
  "createdAt",
  "queuedAt",
  "startedAt",
  "finishedAt",
  "retryAt",
  "updatedAt",
  "waitingForQueue",
  "cancellable",
  "retriable",
  "retriedAt",
  "retriedBy",
  "waitMs",
  "runtimeMs",
] satisfies (keyof TaskView)[];
const PHOTO_FIELDS = ["id", "url", "breed", "subBreed", "label", "createdAt"] satisfies (keyof PhotoView)[];
const pick = (v: Fields, keys: readonly string[]): Fields => Object.fromEntries(keys.map((k) => [k, v[k]]));

function parsePhotos(v: unknown): PhotoView[] | undefined {
  if (!Array.isArray(v) || v.length > MAX_LIMIT) return undefined;
  const photos: PhotoView[] = [];
  for (const p of v) {
    const ok =
      isRecord(p) &&
      count(p.id) &&
      text(p.url, MAX_URL) &&
      /^https?:\/\//.test(p.url) &&
      breedName(p.breed) &&
      orNull(breedName)(p.subBreed) &&
      text(p.label, 100) &&
      time(p.createdAt);
    if (!ok) return undefined;
    photos.push(pick(p, PHOTO_FIELDS) as unknown as PhotoView);
  }
  return photos;
}
