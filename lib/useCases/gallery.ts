// The photo gallery: every stored image once, newest first.
import type { Db, Readers } from "../store/db.ts";
import { ValidationError } from "../platform/errors.ts";
import type { EventSink } from "../live/events.ts";
import { toPhotoView, type PhotoView } from "../lifecycle/shapes.ts";

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

/**
 * Numbered pages, for the HTML gallery. The whole gallery's total is kept by triggers (in
 * a few rows on PostgreSQL, so storing transactions do not queue for one), and pages past
 * the middle are read from the oldest end, so the last page of 100,000 photos costs what
 * the first does. The unfiltered gallery is read with the store's prepared statements.
 */
export async function galleryPage({ db, reads }: Readers, page: number, filter: PhotoFilter = {}) {
  const filtered = Boolean(filter.taskId || filter.breed);
  const total = filtered ? await db.photo.count({ where: where(filter) }) : await reads.photoTotal();
  const read = (from: "newest" | "oldest", skip: number, take: number) =>
    filtered ? db.photo.findMany({ where: where(filter), orderBy: { id: from === "newest" ? "desc" : "asc" }, skip, take }) : reads.photos(from, skip, take);
  const pages = Math.max(1, Math.ceil(total / PHOTOS_PER_PAGE));
  const skip = (page - 1) * PHOTOS_PER_PAGE;
  let rows: Awaited<ReturnType<typeof read>> = [];
  if (skip < total && page > pages / 2) {
    const take = Math.min(PHOTOS_PER_PAGE, total - skip);
    rows = (await read("oldest", total - skip - take, take)).reverse();
  } else if (skip < total) {
    rows = await read("newest", skip, PHOTOS_PER_PAGE);
  }
  return { photos: rows.map(toPhotoView), page, pages, total, links: pageLinks(page, pages) };
}

/** The page numbers to link: the first, the last, two either side of this one; 0 for a gap. */
export function pageLinks(page: number, pages: number): number[] {
  const links: number[] = [];
  for (let n = 1; n <= pages; n++) {
    if (n === 1 || n === pages || Math.abs(n - page) <= 2) links.push(n);
    else if (Math.abs(n - page) === 3) links.push(0);
    else if (n < page - 3)
      n = page - 4; // jump over the numbers not shown
    else n = pages - 1;
  }
  return links;
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
