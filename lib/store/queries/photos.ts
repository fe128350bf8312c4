// The gallery's photos: counted, read by page or after a cursor, and cleared. The whole
// gallery (no filter) is read with the store's prepared statements and its total from the
// counters its triggers keep.
import type { Photo } from "../../../generated/prisma/client.ts";
import type { Db } from "../db.ts";
import type { PageReads } from "../index.ts";

/** Photos of one task and/or one breed; absent fields match every photo. */
export interface PhotoMatch {
  taskId?: string;
  breed?: string;
  subBreed?: string;
}

export interface PhotoQueries {
  count(match: PhotoMatch): Promise<number>;
  /** Photos in id order from the newest or the oldest end, skipping `skip`. */
  page(match: PhotoMatch, from: "newest" | "oldest", skip: number, take: number): Promise<Photo[]>;
  /** Newest first, with ids below `beforeId` if given. */
  before(match: PhotoMatch, beforeId: number | undefined, take: number): Promise<Photo[]>;
  /** Deletes every photo; returns how many there were. */
  clear(): Promise<number>;
}

export function photoQueries(db: Db, reads: PageReads): PhotoQueries {
  const whole = (match: PhotoMatch) => !match.taskId && !match.breed && !match.subBreed;
  return {
    count: (match) => (whole(match) ? reads.photoTotal() : db.photo.count({ where: whereOf(match) })),
    page: (match, from, skip, take) =>
      whole(match)
        ? reads.photos(from, skip, take)
        : db.photo.findMany({ where: whereOf(match), orderBy: { id: from === "newest" ? "desc" : "asc" }, skip, take }),
    before: (match, beforeId, take) =>
      db.photo.findMany({
        where: { ...whereOf(match), ...(beforeId !== undefined ? { id: { lt: beforeId } } : {}) },
        orderBy: { id: "desc" },
        take,
      }),
    clear: async () => (await db.photo.deleteMany({})).count,
  };
}

function whereOf(match: PhotoMatch) {
  return {
    ...(match.taskId ? { tasks: { some: { taskId: match.taskId } } } : {}),
    ...(match.breed ? { breed: match.breed } : {}),
    ...(match.subBreed ? { subBreed: match.subBreed } : {}),
  };
}
