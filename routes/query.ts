// Query-string values as the handlers want them: a trimmed, bounded string or nothing.
export function queryText(value: unknown, maxLength = 100): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim().slice(0, maxLength) : undefined;
}

/** A task search as the monitor's form and GET /api/tasks send it (lib/useCases/taskSearch.ts checks it). */
export function taskFilterFrom(query: Record<string, unknown>) {
  return {
    state: queryText(query.state),
    breed: queryText(query.breed),
    id: queryText(query.id),
    error: queryText(query.error, 200),
    from: queryText(query.from),
    to: queryText(query.to),
    cursor: queryText(query.cursor),
    before: queryText(query.before),
    order: queryText(query.order),
    sort: queryText(query.sort),
  };
}
