// Stylesheets, the script and the icon are linked with a fingerprint of their content
// (`/static/app.css?v=1a2b3c4d`), so browsers may keep them for a year without asking
// again: a repeat visit downloads only the page. A changed file gets a new address.
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "../../lib/platform/config.ts";

/** Where each public path is read from (what setUpStaticFiles serves). */
const ROOTS: [prefix: string, dir: string][] = [
  ["/static/bulma/", path.join(projectRoot, "node_modules", "bulma", "css")],
  ["/static/", path.join(projectRoot, "static")],
];

const fingerprints = new Map<string, { mtimeMs: number; hash: string }>();

/**
 * The public path with its content's fingerprint; files are re-read only when they change.
 * With `fixed` (production, where templates are cached too) a file is fingerprinted once:
 * asking the disk whether it changed, five times a page, was ~1% of a busy web's CPU.
 */
export function assetUrl(publicPath: string, fixed = false): string {
  const file = fileFor(publicPath);
  let known = fingerprints.get(file);
  if (fixed && known) return `${publicPath}?v=${known.hash}`;
  const { mtimeMs } = statSync(file);
  if (!known || known.mtimeMs !== mtimeMs) {
    known = { mtimeMs, hash: createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 10) };
    fingerprints.set(file, known);
  }
  return `${publicPath}?v=${known.hash}`;
}

function fileFor(publicPath: string): string {
  for (const [prefix, dir] of ROOTS) {
    if (!publicPath.startsWith(prefix)) continue;
    const file = path.join(dir, publicPath.slice(prefix.length));
    if (file.startsWith(dir + path.sep)) return file;
  }
  throw new Error(`not a static asset: ${publicPath}`);
}
