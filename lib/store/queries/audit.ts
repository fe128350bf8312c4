// The audit trail's table: entries written after an action, read back newest first.
import type { AuditEntry } from "../../../generated/prisma/client.ts";
import type { Db } from "../db.ts";

export type NewAuditEntry = Pick<AuditEntry, "actor" | "action" | "target" | "count" | "detail">;

export interface AuditQueries {
  add(entry: NewAuditEntry): Promise<void>;
  /** Entries newest first (only of `action`, if given), skipping `skip`, and how many there are in all. */
  page(action: string | undefined, skip: number, take: number): Promise<{ rows: AuditEntry[]; total: number }>;
}

export function auditQueries(db: Db): AuditQueries {
  return {
    async add(entry) {
      await db.auditEntry.create({ data: entry });
    },
    async page(action, skip, take) {
      const where = action ? { action } : {};
      const [rows, total] = await Promise.all([
        db.auditEntry.findMany({ where, orderBy: { id: "desc" }, skip, take }),
        db.auditEntry.count({ where }),
      ]);
      return { rows, total };
    },
  };
}
