// The photo gallery: every stored image once, newest first.
import type { PhotoMatch, PhotoQueries, Queries } from "../store/queries/index.ts";
import { ValidationError } from "../platform/errors.ts";
import type { EventSink } from "../live/events.ts";
import type { Photo } from "../../generated/prisma/client.ts";
import { toPhotoView, type PhotoView } from "../lifecycle/shapes.ts";

export const PHOTOS_PER_PAGE = 48;

export interface PhotoFilter {
  taskId?: string;
  breed?: string;
}

/** The filter as the store matches it; a breed is named "hound" or "hound/afghan". */
function matchOf(filter: PhotoFilter): PhotoMatch {
  const [breed, subBreed] = filter.breed ? filter.breed.trim().toLowerCase().split("/") : [];
  return {
    ...(filter.taskId ? { taskId: filter.taskId } : {}),
    ...(breed ? { breed } : {}),
    ...(subBreed ? { subBreed } : {}),
  };
}

/**
 * Numbered pages, for the HTML gallery. Pages past the middle are read from the oldest end,
 * so the last page of 100,000 photos costs what the first does (the whole gallery's total
 * is kept by triggers: see lib/store/queries/photos.ts).
 */
export async function galleryPage(photos: PhotoQueries, page: number, filter: PhotoFilter = {}) {
  const match = matchOf(filter);
  const total = await photos.count(match);
  const pages = Math.max(1, Math.ceil(total / PHOTOS_PER_PAGE));
  const skip = (page - 1) * PHOTOS_PER_PAGE;
  let rows: Photo[] = [];
  if (skip < total && page > pages / 2) {
    const take = Math.min(PHOTOS_PER_PAGE, total - skip);
    rows = (await photos.page(match, "oldest", total - skip - take, take)).reverse();
  } else if (skip < total) {
    rows = await photos.page(match, "newest", skip, PHOTOS_PER_PAGE);
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
export async function listPhotos(
  photos: PhotoQueries,
  filter: PhotoFilter & { cursor?: string; limit?: number },
): Promise<{ photos: PhotoView[]; nextCursor: string | null }> {
  const take = filter.limit ?? PHOTOS_PER_PAGE;
  if (!Number.isInteger(take) || take < 1 || take > 200)
    throw new ValidationError({ limit: "The page size must be a whole number from 1 to 200." });
  if (filter.cursor !== undefined && !/^\d{1,15}$/.test(filter.cursor))
    throw new ValidationError({ cursor: "The cursor is not one this API gave out." });
  const rows = await photos.before(matchOf(filter), filter.cursor ? Number(filter.cursor) : undefined, take + 1);
  const page = rows.slice(0, take);
  return { photos: page.map(toPhotoView), nextCursor: rows.length > take ? String(page[page.length - 1]!.id) : null };
}

/** Empties the gallery; tasks and their history stay. */
export async function clearPhotos(deps: { data: Pick<Queries, "photos">; events: EventSink }): Promise<number> {
  const count = await deps.data.photos.clear();
  deps.events.emit({ type: "photos-cleared", deleted: count });
  return count;
}
