// `npm run build`: compiles the entry files to dist/web.js, dist/worker.js and
// dist/healthcheck.js (the image's HEALTHCHECK) and dist/supervise.js (npm start's runner),
// one bundle each.
// Why esbuild and not tsc: tsc mirrors the source tree (dist/tasks/worker.js,
// dist/lib/config.js, so lib/platform/config.ts's projectRoot would become dist/ and miss views/),
// and keeps the sources' `.ts` import specifiers unless told to rewrite them. esbuild
// bundles the app's own TypeScript (and the generated Prisma client) into one file per
// entry, which also loads faster than ~60 modules, and leaves every package in
// node_modules external, so native modules and Prisma's wasm load from node_modules as
// they do under tsx. It only strips types: type checking stays `npm run typecheck`
// (tsc --noEmit), which npm test runs first.
// dist/ sits one level below the project, like lib/, so projectRoot still finds views/,
// static/, prisma/ and node_modules/bulma.
// `--if-stale` builds only when a source file is newer than the output (npm start uses it).
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../lib/platform/config.ts";

export const ENTRIES = {
  web: "web.ts",
  worker: "tasks/worker.ts",
  healthcheck: "scripts/healthcheck.ts",
  supervise: "scripts/supervise.ts",
} as const;
const SOURCES = [
  "app.ts",
  "web.ts",
  "lib",
  "routes",
  "tasks",
  "scripts",
  "generated",
  "tsconfig.json",
  "package.json",
  "package-lock.json",
];

export async function buildAll(outdir = path.join(projectRoot, "dist")): Promise<void> {
  const { build } = await import("esbuild"); // only when building: `--if-stale` on a fresh dist/ needs no esbuild
  await Promise.all(
    Object.entries(ENTRIES).map(([name, entry]) =>
      build({
        entryPoints: [path.join(projectRoot, entry)],
        outfile: path.join(outdir, `${name}.js`),
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        packages: "external",
        sourcemap: true,
        logLevel: "warning",
      }),
    ),
  );
}

async function newest(file: string): Promise<number> {
  const info = await stat(file).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const entries = await readdir(file);
  return Math.max(info.mtimeMs, ...(await Promise.all(entries.map((e) => newest(path.join(file, e))))));
}

export async function isStale(outdir = path.join(projectRoot, "dist")): Promise<boolean> {
  const outputs = await Promise.all(
    Object.keys(ENTRIES).map((name) =>
      stat(path.join(outdir, `${name}.js`)).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    ),
  );
  const source = Math.max(...(await Promise.all(SOURCES.map((s) => newest(path.join(projectRoot, s))))));
  return Math.min(...outputs) < source;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv.includes("--if-stale") && !(await isStale())) process.exit(0);
  const started = Date.now();
  await buildAll();
  console.log(
    `built ${Object.keys(ENTRIES)
      .map((name) => `dist/${name}.js`)
      .join(", ")} in ${Date.now() - started} ms`,
  );
}
