// Prisma CLI set-up that works offline: the JavaScript schema engine over the same
// better-sqlite3 driver adapter the app uses, so no engine binary is ever downloaded.
import path from "node:path";
import { defineConfig } from "prisma/config";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { databaseUrl } from "./lib/config.ts";

const url = databaseUrl();
process.env.DATABASE_URL = url;

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  adapter: async () => new PrismaBetterSQLite3({ url, timeout: 10_000 }),
});
