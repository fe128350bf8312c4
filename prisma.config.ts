// Prisma CLI set-up that works offline: the JavaScript schema engine over the same driver
// adapters the app uses, so no engine binary is ever downloaded. DATABASE_URL chooses the
// store: file: is SQLite (prisma/), postgres:// is PostgreSQL (prisma/postgres/, its
// schema generated from the SQLite one). PRISMA_PROVIDER=postgresql chooses PostgreSQL
// without a database, to generate its client. The schema is chosen here, not with
// --schema, because `generate --schema` tries to download an engine.
import path from "node:path";
import { defineConfig } from "prisma/config";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { databaseUrl, isPostgresUrl } from "./lib/platform/config.ts";
import { postgresAdapter } from "./lib/store/postgres/adapter.ts";

const url =
  process.env.PRISMA_PROVIDER === "postgresql" && !process.env.DATABASE_URL
    ? "postgresql://generate@localhost/none"
    : databaseUrl();
process.env.DATABASE_URL = url;
const postgres = isPostgresUrl(url);
const folder = postgres ? path.join("prisma", "postgres") : "prisma";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join(folder, "schema.prisma"),
  migrations: { path: path.join(folder, "migrations") },
  adapter: async () => (postgres ? postgresAdapter(url) : new PrismaBetterSQLite3({ url, timeout: 10_000 })),
});
