// Writes prisma/postgres/schema.prisma from prisma/schema.prisma, the one source of truth.
// A Prisma schema has one provider, so PostgreSQL gets a copy with its own provider and
// client output; tests/postgres-setup.test.ts fails when the copy or the two migration
// folders drift apart. `npm run db:postgres-schema` after changing the SQLite schema.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../lib/platform/config.ts";

export const SQLITE_SCHEMA = path.join(projectRoot, "prisma", "schema.prisma");
export const POSTGRES_SCHEMA = path.join(projectRoot, "prisma", "postgres", "schema.prisma");

const HEADER =
  "// Generated from prisma/schema.prisma by scripts/postgres-schema.ts: edit that file, then run `npm run db:postgres-schema`.\n";

export function postgresSchema(sqlite: string): string {
  const replaced = sqlite
    .replace(/provider\s*=\s*"sqlite"/, 'provider = "postgresql"')
    .replace(/output\s*=\s*"\.\.\/generated\/prisma"/, 'output       = "../../generated/postgres"');
  if (!replaced.includes('"postgresql"') || !replaced.includes("generated/postgres"))
    throw new Error("prisma/schema.prisma no longer has the provider or output line this script rewrites");
  return HEADER + replaced;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await writeFile(POSTGRES_SCHEMA, postgresSchema(await readFile(SQLITE_SCHEMA, "utf8")));
  console.log(`wrote ${path.relative(projectRoot, POSTGRES_SCHEMA)}`);
}
