// How `npm start` runs a compiled entry file (package.json's start script): the one place its
// node flags are written, read by the bench and checked against the Dockerfile and compose.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** "node --flag ... dist/<entry>.js", as the start script has it. */
export function startCommand(entry: "web" | "worker"): string {
  const start: string = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).scripts.start;
  const command = new RegExp(`node (?:--[\\w-]+(?:=[\\w.-]+)? )*dist/${entry}\\.js`).exec(start)?.[0];
  if (!command) throw new Error(`package.json's start script does not run dist/${entry}.js with node`);
  return command;
}
