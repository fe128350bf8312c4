// The audit trail (Oban Web's "user actions"): every action that changes or removes work
// is written down with who pressed it, what it was done to and what came of it. The use
// cases write it after they acted, so the trail lists what happened, not what was tried;
// the monitor's /audit page and GET /api/audit read it, newest first.
import type { AuditQueries } from "../store/queries/index.ts";
import { ValidationError } from "../platform/errors.ts";

export const AUDIT_ACTIONS = [
  "retry",
  "retry-group",
  "cancel",
  "stop",
  "purge",
  "pause",
  "resume",
  "requeue",
  "requeue-all",
  "discard",
  "discard-all",
  "discard-settled",
  "bulk-retry",
  "bulk-cancel",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRecord {
  /** Who, as the app knows them (routes/admin.ts actorOf): "ops from 10.0.0.5". */
  by: string;
  action: AuditAction;
  /** What it was done to: a task id, a failure group, a worker or "all", a dead letter's key, a queue. */
  target: string;
  /** How many tasks or messages it touched. */
  count?: number;
  detail?: string;
}

export interface AuditEntryView {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  count: number;
  detail: string | null;
}

/** Longest text kept in a column: targets and details come from people and queues. */
const MAX_TEXT = 500;
export const AUDIT_PAGE_SIZE = 25;
/** Pages past this are not offered: the trail is read from its newest end. */
const MAX_PAGE = 10_000;

export async function recordAction(audit: AuditQueries, entry: AuditRecord): Promise<void> {
  const cut = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);
  await audit.add({
    actor: cut(entry.by),
    action: entry.action,
    target: cut(entry.target),
    count: entry.count ?? 1,
    detail: entry.detail === undefined ? null : cut(entry.detail),
  });
}

/**
 * The page'th page (from 1) of the trail, newest first, and how many entries there are (of `action` only, if given).
 */
export async function listAudit(
  audit: AuditQueries,
  options: { page?: unknown; action?: unknown; limit?: number } = {},
) {
  const page = pageFrom(options.page);
  const action = actionFrom(options.action);
  const limit = Math.min(100, Math.max(1, options.limit ?? AUDIT_PAGE_SIZE));
  const { rows, total } = await audit.page(action, (page - 1) * limit, limit);
  const entries: AuditEntryView[] = rows.map((row) => ({ ...row, at: row.at.toISOString() }));
  const first = total === 0 ? 0 : Math.min(total, (page - 1) * limit + 1);
  return {
    entries,
    total,
    page,
    limit,
    first,
    last: first === 0 ? 0 : first + entries.length - 1,
    hasNext: page * limit < total,
    ...(action ? { action } : {}),
  };
}

function pageFrom(value: unknown): number {
  if (value === undefined || value === "") return 1;
  const page = typeof value === "string" && /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(page) || page < 1 || page > MAX_PAGE)
    throw new ValidationError({ page: `The page is a whole number from 1 to ${MAX_PAGE}.` });
  return page;
}

function actionFrom(value: unknown): AuditAction | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value === "string" && (AUDIT_ACTIONS as readonly string[]).includes(value)) return value as AuditAction;
  throw new ValidationError({ action: `The action is one of ${AUDIT_ACTIONS.join(", ")}.` });
}
