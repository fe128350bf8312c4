// `npm run build`: compiles the two entry files to dist/web.js and dist/worker.js. esbuild
// bundles the app's own TypeScript (and the generated Prisma client) and leaves every
// package in node_modules external: tsc would need every `.ts` import rewritten, and type
// checking is `npm run typecheck` anyway. dist/ sits one level below the project, like
// lib/, so lib/config.ts's projectRoot still finds views/, static/ and prisma/.
// `--if-stale` builds only when a source file is newer than the output (npm start uses it).
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { projectRoot } from "../lib/config.ts";

export const ENTRIES = { web: "web.ts", worker: "tasks/worker.ts" } as const;
const SOURCES = ["app.ts", "web.ts", "lib", "routes", "tasks", "generated", "package-lock.json"];

export async function buildAll(outdir = path.join(projectRoot, "dist")): Promise<void> {
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
  const outputs = await Promise.all(Object.keys(ENTRIES).map((name) => stat(path.join(outdir, `${name}.js`)).then((s) => s.mtimeMs, () => 0)));
  const source = Math.max(...(await Promise.all(SOURCES.map((s) => newest(path.join(projectRoot, s))))));
  return Math.min(...outputs) < source;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv.includes("--if-stale") && !(await isStale())) process.exit(0);
  const started = Date.now();
  await buildAll();
  console.log(`built dist/web.js and dist/worker.js in ${Date.now() - started} ms`);
}
