// The photo gallery: every stored image once, newest first.
import type { Db } from "./db.ts";
import { ValidationError } from "./errors.ts";
import type { EventSink } from "./events.ts";
import { toPhotoView, type PhotoView } from "./views.ts";

export const PHOTOS_PER_PAGE = 48;

export interface PhotoFilter {
  taskId?: string;
  breed?: string;
}

function where(filter: PhotoFilter) {
  const [breed, subBreed] = filter.breed ? filter.breed.trim().toLowerCase().split("/") : [];
  return {
    ...(filter.taskId ? { tasks: { some: { taskId: filter.taskId } } } : {}),
    ...(breed ? { breed } : {}),
    ...(subBreed ? { subBreed } : {}),
  };
}

/** Numbered pages, for the HTML gallery. */
export async function galleryPage(db: Db, page: number, filter: PhotoFilter = {}) {
  const [total, rows] = await Promise.all([
    db.photo.count({ where: where(filter) }),
    db.photo.findMany({ where: where(filter), orderBy: { id: "desc" }, skip: (page - 1) * PHOTOS_PER_PAGE, take: PHOTOS_PER_PAGE }),
  ]);
  return { photos: rows.map(toPhotoView), page, pages: Math.max(1, Math.ceil(total / PHOTOS_PER_PAGE)), total };
}

/** Cursor pages, for the JSON API: the cursor is the last photo id seen. */
export async function listPhotos(db: Db, filter: PhotoFilter & { cursor?: string; limit?: number }): Promise<{ photos: PhotoView[]; nextCursor: string | null }> {
  const take = filter.limit ?? PHOTOS_PER_PAGE;
  if (!Number.isInteger(take) || take < 1 || take > 200) throw new ValidationError({ limit: "The page size must be a whole number from 1 to 200." });
  if (filter.cursor !== undefined && !/^\d{1,15}$/.test(filter.cursor)) throw new ValidationError({ cursor: "The cursor is not one this API gave out." });
  const rows = await db.photo.findMany({
    where: { ...where(filter), ...(filter.cursor ? { id: { lt: Number(filter.cursor) } } : {}) },
    orderBy: { id: "desc" },
    take: take + 1,
  });
  const page = rows.slice(0, take);
  return { photos: page.map(toPhotoView), nextCursor: rows.length > take ? String(page[page.length - 1]!.id) : null };
}

/** Empties the gallery; tasks and their history stay. */
export async function clearPhotos(deps: { db: Db; events: EventSink }): Promise<number> {
  const { count } = await deps.db.photo.deleteMany({});
  deps.events.emit({ type: "photos-cleared", deleted: count });
  return count;
}
