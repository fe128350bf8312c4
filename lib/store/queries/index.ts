// The queries of pages and use cases, beside the pipeline's transitions (../index.ts): each
// subject's reads, and the small writes that are no task transition (the audit trail,
// clearing the gallery). They return plain rows; the use cases keep the rules (what a
// search may ask, paging, validation). Prisma underneath, and the store's prepared reads
// for the plain pages.
import { openDatabase, type Db } from "../db.ts";
import type { PageReads } from "../index.ts";
import { auditQueries, type AuditQueries } from "./audit.ts";
import { historyQueries, type HistoryQueries } from "./history.ts";
import { photoQueries, type PhotoQueries } from "./photos.ts";
import { taskQueries, type TaskQueries } from "./tasks.ts";
import { taskSearchQueries, type TaskSearchQueries } from "./taskSearch.ts";

export type { AuditQueries, NewAuditEntry } from "./audit.ts";
export { STEPS, type HistoryQueries, type HistoryRow } from "./history.ts";
export type { PhotoMatch, PhotoQueries } from "./photos.ts";
export type { TaskQueries, TaskWithHistory } from "./tasks.ts";
export type { ListedRow, Place, SortColumn, StateCounts, TaskMatch, TaskSearchQueries, Walk } from "./taskSearch.ts";

export interface Queries {
  tasks: TaskQueries;
  search: TaskSearchQueries;
  photos: PhotoQueries;
  audit: AuditQueries;
  history: HistoryQueries;
  /** Resolves when the database answers a trivial query, rejects when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The queries over a Prisma client and the store's prepared page reads; close() disconnects the client. */
export function queriesOver(db: Db, reads: PageReads): Queries {
  return {
    tasks: taskQueries(db),
    search: taskSearchQueries(db, reads),
    photos: photoQueries(db, reads),
    audit: auditQueries(db),
    history: historyQueries(db),
    ping: async () => void (await db.$queryRawUnsafe("SELECT 1")),
    close: () => db.$disconnect(),
  };
}

/** Opens the queries on the database DATABASE_URL names (after it is migrated: ../migrate.ts). */
export async function openQueries(databaseUrl: string, reads: PageReads): Promise<Queries> {
  return queriesOver(await openDatabase(databaseUrl), reads);
}
