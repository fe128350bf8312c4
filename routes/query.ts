// Query-string values as the handlers want them: a trimmed, bounded string or nothing.
export function queryText(value: unknown, maxLength = 100): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim().slice(0, maxLength) : undefined;
}
